//! When to retry and how long to wait: exponential backoff with full jitter, overridden by the server's
//! `retry-after-ms` / `retry-after` headers.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

use crate::RetryPolicy;

/// Statuses that mean "try again later". 409 is Anthropic's lock-timeout conflict; 529 its overload.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// How long to wait before retry number `retry` (from 1): the server's wish when it stated one, else a
/// random delay up to `initial_delay * 2^(retry-1)`; never more than `max_delay`.
pub(crate) fn delay(policy: &RetryPolicy, retry: u32, server_wish: Option<Duration>) -> Duration {
    match server_wish {
        Some(wish) => wish.min(policy.max_delay),
        None => {
            let doublings = retry.saturating_sub(1).min(31);
            let ceiling = policy.initial_delay.saturating_mul(1 << doublings).min(policy.max_delay);
            // Full jitter spreads simultaneous clients apart better than a fixed backoff.
            Duration::try_from_secs_f64(ceiling.as_secs_f64() * fastrand::f64()).unwrap_or(ceiling)
        }
    }
}

/// The delay a response asks for: `retry-after-ms` (milliseconds), else `retry-after` (seconds or an HTTP
/// date). Unparseable values are ignored.
pub(crate) fn server_wish(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    if let Some(milliseconds) = header("retry-after-ms").and_then(parse_non_negative) {
        return Some(Duration::from_secs_f64(milliseconds / 1000.0));
    }
    let value = header("retry-after")?;
    if let Some(seconds) = parse_non_negative(value) {
        return Some(Duration::from_secs_f64(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    // A date already past means "now".
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_non_negative(text: &str) -> Option<f64> {
    // The bound keeps `Duration::from_secs_f64` from panicking on absurd values.
    text.parse::<f64>().ok().filter(|number| number.is_finite() && (0.0..1e12).contains(number))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn policy() -> RetryPolicy {
        RetryPolicy { max_retries: 4, initial_delay: Duration::from_millis(500), max_delay: Duration::from_secs(60) }
    }

    #[test]
    fn retry_after_in_seconds() {
        let wish = server_wish(&headers(&[("retry-after", "7")]), SystemTime::now());
        assert_eq!(wish, Some(Duration::from_secs(7)));
        let wish = server_wish(&headers(&[("retry-after", " 1.5 ")]), SystemTime::now());
        assert_eq!(wish, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        let wish = server_wish(&headers(&[("retry-after", "7"), ("retry-after-ms", "250")]), SystemTime::now());
        assert_eq!(wish, Some(Duration::from_millis(250)));
    }

    #[test]
    fn retry_after_as_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let wish = server_wish(&headers(&[("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT")]), now);
        assert_eq!(wish, Some(Duration::from_secs(30)));
        let past = server_wish(&headers(&[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")]), now);
        assert_eq!(past, Some(Duration::ZERO));
    }

    #[test]
    fn unusable_retry_after_is_ignored() {
        for value in ["soon", "-3", "NaN", "1e300", ""] {
            assert_eq!(server_wish(&headers(&[("retry-after", value)]), SystemTime::now()), None, "{value}");
        }
        assert_eq!(server_wish(&HeaderMap::new(), SystemTime::now()), None);
    }

    #[test]
    fn server_wish_is_capped_at_max_delay() {
        assert_eq!(delay(&policy(), 1, Some(Duration::from_secs(3600))), Duration::from_secs(60));
        assert_eq!(delay(&policy(), 1, Some(Duration::ZERO)), Duration::ZERO);
    }

    #[test]
    fn backoff_stays_under_its_doubling_ceiling() {
        for _ in 0..200 {
            assert!(delay(&policy(), 1, None) <= Duration::from_millis(500));
            assert!(delay(&policy(), 3, None) <= Duration::from_millis(2000));
            assert!(delay(&policy(), 30, None) <= Duration::from_secs(60));
            assert!(delay(&policy(), u32::MAX, None) <= Duration::from_secs(60));
        }
    }

    #[test]
    fn retryable_statuses() {
        for status in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 413, 422] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }
}
