//! Input sources for keytrail: directory walks, archives, stdin; later git history, images and logs.
