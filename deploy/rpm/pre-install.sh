# udts-exporter: the service's system user and group.
getent group udts-exporter >/dev/null || groupadd --system udts-exporter
getent passwd udts-exporter >/dev/null || \
    useradd --system --gid udts-exporter --no-create-home --home-dir / \
        --shell /sbin/nologin --comment "udts-exporter Prometheus exporter" udts-exporter
exit 0
