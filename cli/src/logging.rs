//! `-v` / `-vv` / `FOTP_LOG`: the core's events (the `fotp::*` targets of the `log` facade) as
//! one line each on stderr.

use log::{Level, LevelFilter, Log, Metadata, Record};

/// What `FOTP_LOG` may say.
pub const LEVELS: &str = "off, error, warn, info, debug, trace";

/// The level of `-v` counted `verbose` times, else of `FOTP_LOG` (`None`: not set or empty);
/// an unknown `FOTP_LOG` value is an error naming the accepted ones.
pub fn level(verbose: u8, env: Option<&str>) -> Result<LevelFilter, String> {
    match verbose {
        0 => {}
        1 => return Ok(LevelFilter::Info),
        _ => return Ok(LevelFilter::Debug),
    }
    match env.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(LevelFilter::Off),
        Some(v) => v
            .parse()
            .map_err(|_| format!("FOTP_LOG is {v:?}, not a log level ({LEVELS})")),
    }
}

struct Stderr;
static STDERR: Stderr = Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // ureq's own events are not part of the interface.
        metadata.target().starts_with("fotp::") && metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        let line = format!("fotp: {level} {}: {}", record.target(), record.args());
        // One write per line, so lines of concurrent calls do not interleave.
        eprintln!("{}", fotp_cli::text::escape_controls(&line));
    }

    fn flush(&self) {}
}

/// Installs the stderr logger at `level` (nothing for `Off`).
pub fn install(level: LevelFilter) {
    if level != LevelFilter::Off && log::set_logger(&STDERR).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_variable() {
        assert_eq!(level(0, None), Ok(LevelFilter::Off));
        assert_eq!(level(0, Some(" ")), Ok(LevelFilter::Off));
        assert_eq!(level(0, Some("debug")), Ok(LevelFilter::Debug));
        assert_eq!(level(0, Some("WARN")), Ok(LevelFilter::Warn));
        assert_eq!(level(1, Some("error")), Ok(LevelFilter::Info));
        assert_eq!(level(2, None), Ok(LevelFilter::Debug));
        assert_eq!(level(5, None), Ok(LevelFilter::Debug));
        assert!(level(0, Some("loud"))
            .unwrap_err()
            .contains("FOTP_LOG is \"loud\""));
    }
}
