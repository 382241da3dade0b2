//! Connection and message ids shaped like API Gateway's: 16 characters of
//! base64 ending in `=` (`L0SM9cOFvHcCIhw=`), from 88 random bits. The
//! URL-safe alphabet keeps `/` and `+` out, so ids are safe in paths.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;

pub fn new_id() -> String {
    let mut bytes = [0u8; 11];
    fastrand::fill(&mut bytes);
    URL_SAFE.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_api_gateways_and_do_not_repeat() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            assert_eq!(id.len(), 16);
            assert!(id.ends_with('='));
            assert!(
                wsadmin_core::record::validate_connection_id(id).is_ok(),
                "{id}"
            );
        }
    }
}
