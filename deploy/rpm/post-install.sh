# udts-exporter: enabled on first install, not started (it needs the account's keys first).
if [ "$1" -eq 1 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl --no-reload enable udts-exporter.service >/dev/null 2>&1 || :
fi
command -v systemctl >/dev/null 2>&1 && systemctl daemon-reload >/dev/null 2>&1 || :
exit 0
