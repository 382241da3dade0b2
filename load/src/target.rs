//! Where wsload may connect: a `ws://` URL whose host is a loopback address,
//! and the loopback source addresses clients are spread over when one
//! address has too few ephemeral ports. Pure: parsing never resolves names
//! (`localhost` is 127.0.0.1) and never opens a socket.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio_tungstenite::tungstenite::http::Uri;

use crate::LoadError;

/// Clients per loopback source address: below the ~28,000 ephemeral ports
/// Linux has by default, leaving room for everything else on the machine.
pub const CLIENTS_PER_SOURCE: usize = 20_000;
/// Source addresses stay within 127.0.0.1 to 127.0.0.254.
pub const MAX_SOURCES: usize = 254;

/// A validated `ws://` URL on a loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given (it becomes the request line and the Host header).
    url: String,
    /// The socket the clients connect to.
    addr: SocketAddr,
}

impl Target {
    /// Accepts `ws://HOST[:PORT]/PATH[?QUERY]` where HOST is `localhost`, an
    /// address in 127.0.0.0/8 or `[::1]`; refuses anything else, naming it.
    pub fn parse(url: &str) -> Result<Self, LoadError> {
        let bad = |reason: &str| LoadError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|_| bad("it is not a URL (expected ws://127.0.0.1:PORT/STAGE)"))?;
        match uri.scheme_str() {
            Some("ws") => {}
            Some("wss") => {
                return Err(bad("wss:// is not supported: the local stack serves ws://"));
            }
            _ => return Err(bad("expected a ws:// URL, like ws://127.0.0.1:3001/dev")),
        }
        let host = uri.host().ok_or_else(|| bad("it has no host"))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip = if bare.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            bare.parse::<IpAddr>().map_err(|_| LoadError::NotLoopback {
                url: url.to_owned(),
                host: host.to_owned(),
            })?
        };
        if !ip.is_loopback() {
            return Err(LoadError::NotLoopback {
                url: url.to_owned(),
                host: host.to_owned(),
            });
        }
        let port = uri.port_u16().unwrap_or(80);
        Ok(Self {
            url: url.to_owned(),
            addr: SocketAddr::new(ip, port),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL with `meta` appended to its query string; `{i}` in a value
    /// becomes `index`. Keys and values are percent-encoded.
    pub fn url_with_meta(&self, meta: &[(String, String)], index: usize) -> String {
        if meta.is_empty() {
            return self.url.clone();
        }
        let mut url = self.url.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if url.ends_with('?') || url.ends_with('&') {
            url.pop();
        }
        for (key, value) in meta {
            let value = value.replace("{i}", &index.to_string());
            url.push(sep);
            encode_into(&mut url, key);
            url.push('=');
            encode_into(&mut url, &value);
            sep = '&';
        }
        url
    }

    /// How many source addresses `clients` open at once use: `requested`,
    /// or with 0 as many as they need ([`CLIENTS_PER_SOURCE`] each).
    pub fn sources_for(&self, clients: usize, requested: usize) -> Result<usize, LoadError> {
        let needed = clients.div_ceil(CLIENTS_PER_SOURCE).max(1);
        let sources = if requested == 0 { needed } else { requested };
        if sources > 1 && self.addr.is_ipv6() {
            return Err(LoadError::TooManyForIpv6 {
                requested: clients,
                max: CLIENTS_PER_SOURCE,
            });
        }
        if sources < needed || sources > MAX_SOURCES {
            return Err(LoadError::Sources {
                requested,
                clients,
                needed,
                max: MAX_SOURCES,
            });
        }
        Ok(sources)
    }

    /// The address client `index` binds before connecting, out of `sources`:
    /// 127.0.0.1, 127.0.0.2, ... in turn. `None` for IPv6 (one address).
    pub fn source(&self, index: usize, sources: usize) -> Option<SocketAddr> {
        match self.addr {
            SocketAddr::V4(_) => {
                let n = (index % sources.max(1)) as u32 + 1;
                Some(SocketAddr::from((Ipv4Addr::from(0x7f00_0000 | n), 0)))
            }
            SocketAddr::V6(_) => None,
        }
    }
}

/// Parses `key=value` meta, as the command line takes it.
pub fn parse_meta(input: &str) -> Result<(String, String), LoadError> {
    let err = |reason| LoadError::Meta {
        input: input.to_owned(),
        reason,
    };
    let (key, value) = input
        .split_once('=')
        .ok_or_else(|| err("there is no '='"))?;
    if key.is_empty() {
        return Err(err("the key is empty"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_into(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_accepted() {
        for (url, addr) in [
            ("ws://127.0.0.1:3001/dev", "127.0.0.1:3001"),
            ("ws://localhost:3001/dev", "127.0.0.1:3001"),
            ("ws://LOCALHOST/dev", "127.0.0.1:80"),
            ("ws://127.1.2.3:9/x?room=1", "127.1.2.3:9"),
            ("ws://[::1]:3001/dev", "[::1]:3001"),
        ] {
            let t = Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(t.addr().to_string(), addr);
            assert_eq!(t.url(), url);
        }
    }

    #[test]
    fn other_hosts_are_refused_by_name() {
        for (url, host) in [
            ("ws://10.0.0.1:3001/dev", "10.0.0.1"),
            ("ws://example.com/dev", "example.com"),
            ("ws://0.0.0.0:3001/dev", "0.0.0.0"),
            ("ws://[2001:db8::1]/dev", "[2001:db8::1]"),
        ] {
            let e = Target::parse(url).expect_err(url).to_string();
            assert!(e.contains(&format!("host {host:?}")), "{e}");
            assert!(e.contains("not a loopback address"), "{e}");
        }
    }

    #[test]
    fn other_schemes_and_garbage_are_refused() {
        for (url, want) in [
            ("wss://127.0.0.1/dev", "wss:// is not supported"),
            ("http://127.0.0.1/dev", "expected a ws:// URL"),
            ("127.0.0.1:3001", "expected a ws:// URL"),
            ("ws://", "not a URL"),
            ("", "not a URL"),
        ] {
            let e = Target::parse(url).expect_err(url).to_string();
            assert!(e.contains(want), "{url}: {e}");
        }
    }

    #[test]
    fn meta_is_appended_per_client_and_encoded() {
        let t = Target::parse("ws://127.0.0.1:1/dev").expect("url");
        let meta = vec![
            ("room".to_owned(), "7".to_owned()),
            ("user".to_owned(), "c{i}".to_owned()),
            ("note".to_owned(), "a b&c".to_owned()),
        ];
        assert_eq!(
            t.url_with_meta(&meta, 42),
            "ws://127.0.0.1:1/dev?room=7&user=c42&note=a%20b%26c"
        );
        let t = Target::parse("ws://127.0.0.1:1/dev?x=1").expect("url");
        assert_eq!(
            t.url_with_meta(&meta[..1], 0),
            "ws://127.0.0.1:1/dev?x=1&room=7"
        );
        assert_eq!(t.url_with_meta(&[], 0), "ws://127.0.0.1:1/dev?x=1");
    }

    #[test]
    fn meta_flags_parse() {
        assert_eq!(
            parse_meta("room=7").expect("meta"),
            ("room".into(), "7".into())
        );
        assert_eq!(parse_meta("k=").expect("meta"), ("k".into(), "".into()));
        assert!(parse_meta("room").is_err());
        assert!(parse_meta("=7").is_err());
    }

    #[test]
    fn clients_spread_over_source_addresses_when_ports_run_short() {
        let t = Target::parse("ws://127.0.0.1:1/dev").expect("url");
        assert_eq!(t.sources_for(1, 0).expect("sources"), 1);
        assert_eq!(t.sources_for(CLIENTS_PER_SOURCE, 0).expect("sources"), 1);
        assert_eq!(
            t.sources_for(CLIENTS_PER_SOURCE + 1, 0).expect("sources"),
            2
        );
        assert_eq!(t.sources_for(10, 3).expect("sources"), 3);
        let e = t
            .sources_for(CLIENTS_PER_SOURCE * 3, 2)
            .expect_err("too few")
            .to_string();
        assert!(e.contains("2 source addresses are too few"), "{e}");
        assert!(t.sources_for(10, MAX_SOURCES + 1).is_err());
        assert_eq!(
            t.source(0, 1).map(|a| a.to_string()),
            Some("127.0.0.1:0".into())
        );
        assert_eq!(
            t.source(5, 3).map(|a| a.to_string()),
            Some("127.0.0.3:0".into())
        );
        let v6 = Target::parse("ws://[::1]:1/dev").expect("url");
        assert_eq!(v6.source(5, 1), None);
        assert!(v6.sources_for(CLIENTS_PER_SOURCE + 1, 0).is_err());
        assert!(v6.sources_for(10, 2).is_err());
    }
}
