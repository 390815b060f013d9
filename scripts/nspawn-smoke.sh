#!/bin/sh
# Manual check (root, Debian with systemd-container): boot a throwaway
# systemd in a container whose root is a tmpfs overlay of this machine's,
# install the .deb built by `make deb`, and run the real hardened unit:
# READY, a film scored, reload, rejected reload, watchdog restart, drain on
# stop. Nothing is written to the host's file system.
#
# Usage: scripts/nspawn-smoke.sh build/triaged_*.deb /path/to/a/film.dcm
set -eu
DEB=$(readlink -f "$1")
FILM=$(readlink -f "$2")
M=/mnt/triaged-smoke
mkdir -p $M && mount -t tmpfs -o size=3G tmpfs $M
mkdir -p $M/upper $M/work $M/root
mount -t overlay overlay -o lowerdir=/,upperdir=$M/upper,workdir=$M/work $M/root
cleanup() {
	[ -n "${PID:-}" ] && nsenter -t "$PID" -a systemctl poweroff 2>/dev/null || true
	sleep 3
	umount $M/root 2>/dev/null || true
	umount $M 2>/dev/null || true
}
trap cleanup EXIT
rm -f $M/root/etc/machine-id
cp "$DEB" $M/root/root/triaged.deb
cp "$FILM" $M/root/root/film.dcm
systemd-nspawn --register=no --keep-unit -D $M/root -M triaged-smoke --console=pipe -b >/tmp/triaged-smoke.log 2>&1 &
sleep 15
PID=$(pgrep -n -f '^/usr/lib/systemd/systemd$')
ct() { nsenter -t "$PID" -a sh -c "$1"; }
ct 'dpkg -i /root/triaged.deb && systemctl enable --now triaged'
ct 'systemctl show triaged -p ActiveState -p StatusText; curl -sf localhost:9464/readyz'
ct 'cp /root/film.dcm /var/lib/triaged/incoming/a.dcm; sleep 5; ls /var/lib/triaged/incoming/done'
ct 'cp /etc/triaged/triaged.yaml /root/good.yaml; printf "triage: {urgent_threshold: 0.3, critical_threshold: 0.95}\n" >> /etc/triaged/triaged.yaml; systemctl reload triaged; systemctl show triaged -p StatusText'
ct 'printf "bogus: 1\n" >> /etc/triaged/triaged.yaml; systemctl reload triaged; systemctl show triaged -p StatusText; cp /root/good.yaml /etc/triaged/triaged.yaml'
ct 'kill -STOP $(systemctl show -p MainPID --value triaged); sleep 45; systemctl show triaged -p NRestarts -p StatusText'
ct 'journalctl -u triaged -o cat | grep -E "Watchdog timeout|SIGABRT" | head -2'
ct 'systemctl stop triaged; systemctl show triaged -p Result -p ExecMainStatus; systemd-analyze security triaged | tail -1'
