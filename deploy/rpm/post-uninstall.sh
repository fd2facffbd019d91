# udts-exporter: restart on upgrade, forget the unit on erase.
command -v systemctl >/dev/null 2>&1 && systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -ge 1 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl try-restart udts-exporter.service >/dev/null 2>&1 || :
fi
exit 0
