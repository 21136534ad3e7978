//! Thread counts from the command line, clamped: more threads than the
//! machine can run only cost memory and start-up time (`--threads 100000`
//! used to take minutes or abort), so a request beyond
//! [`PER_CPU`] threads per CPU is lowered, with a note on stderr.

/// Most threads per available CPU a command runs.
pub const PER_CPU: usize = 8;

/// The thread count to use for a `--threads` request: `0` stays `0` (the
/// engines pick one per CPU); anything above `PER_CPU` × CPUs is lowered
/// to that, with a note unless `quiet`.
pub fn clamp(requested: usize, quiet: bool) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (threads, lowered) = clamp_to(requested, cpus);
    if lowered && !quiet {
        eprintln!(
            "note: --threads {requested} lowered to {threads} ({PER_CPU} per CPU, {cpus} CPU(s))"
        );
    }
    threads
}

/// [`clamp`] for `cpus` CPUs: the count and whether it was lowered.
fn clamp_to(requested: usize, cpus: usize) -> (usize, bool) {
    let max = cpus.max(1).saturating_mul(PER_CPU);
    if requested > max {
        (max, true)
    } else {
        (requested, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_requests_are_lowered_small_ones_kept() {
        assert_eq!(clamp_to(0, 2), (0, false));
        assert_eq!(clamp_to(4, 2), (4, false));
        assert_eq!(clamp_to(16, 2), (16, false));
        assert_eq!(clamp_to(2000, 2), (16, true));
        assert_eq!(clamp_to(usize::MAX, 64), (512, true));
        assert_eq!(clamp_to(100_000, 0), (8, true));
    }
}
