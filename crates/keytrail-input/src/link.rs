//! Paged HTTP listings (the forges' REST APIs, a registry's catalog):
//! the next page's address from a `Link` header.

/// The `rel="next"` URL of a `Link` header (`<URL>; rel="next"`).
pub(crate) fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"))
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}
