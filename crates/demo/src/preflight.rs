//! Before anything else: are PostgreSQL and RabbitMQ there? If not, say which one, at which
//! address, and how to start it, instead of a stack trace or a silent wait.

use std::time::Duration;

/// A server the demo needs.
pub struct Server {
    pub name: &'static str,
    /// The variable that overrides its URL.
    pub var: &'static str,
    pub default_port: u16,
    /// How to start (or install) it on Debian.
    pub how: &'static str,
}

pub const POSTGRES: Server = Server {
    name: "PostgreSQL",
    var: "DATABASE_URL",
    default_port: 5432,
    how: "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
          (install it first with `apt-get install postgresql` if it is missing)",
};

pub const RABBITMQ: Server = Server {
    name: "RabbitMQ",
    var: "AMQP_URL",
    default_port: 5672,
    how: "start it with `rabbitmq-server -detached` (install it first with \
          `apt-get install rabbitmq-server` if it is missing)",
};

/// `host:port` of a URL like `scheme://user:pass@host:port/path?query`.
pub fn address(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_port = if host_port.is_empty() {
        "localhost"
    } else {
        host_port
    };
    if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    }
}

/// Fails with a message naming the server, its address and how to start it when nothing
/// accepts a TCP connection there within 3 seconds.
pub async fn check(server: &Server, url: &str) -> anyhow::Result<()> {
    let addr = address(url, server.default_port);
    let connect = tokio::net::TcpStream::connect(addr.clone());
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => anyhow::bail!(
            "{} is not answering at {addr} ({e}; {} overrides the address): {}",
            server.name,
            server.var,
            server.how
        ),
        Err(_) => anyhow::bail!(
            "{} did not answer at {addr} within 3 s ({} overrides the address): {}",
            server.name,
            server.var,
            server.how
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_urls() {
        assert_eq!(
            address("postgres://postgres@127.0.0.1:5432/connector", 5432),
            "127.0.0.1:5432"
        );
        assert_eq!(
            address("postgres://db.internal/x?sslmode=require", 5432),
            "db.internal:5432"
        );
        assert_eq!(
            address("amqp://guest:guest@127.0.0.1:5672/%2f", 5672),
            "127.0.0.1:5672"
        );
        assert_eq!(address("amqp://u:p:w@[::1]:5673", 5672), "[::1]:5673");
    }

    #[tokio::test]
    async fn a_closed_port_is_named_with_the_way_to_start_the_server() {
        // Port 9 (discard) is closed on a test machine.
        let err = check(&RABBITMQ, "amqp://guest:guest@127.0.0.1:9/%2f")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("RabbitMQ is not answering at 127.0.0.1:9"),
            "{err}"
        );
        assert!(
            err.contains("rabbitmq-server -detached") && err.contains("AMQP_URL"),
            "{err}"
        );
    }
}
