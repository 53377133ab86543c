# Sourced by run.sh and compare.sh (needs $work): one QEMU boot under TCG
# and the medians of ready lines.

# boot LOG ARGS...: boots a VM with the media ARGS until its ready line,
# powers it off through the monitor (ACPI: the next boot of the same disk
# finds its filesystems clean) and prints the line.
boot() {
  local log=$1; shift
  local mon="$work/mon"
  rm -f "$log" "$mon.in" "$mon.out"; mkfifo "$mon.in" "$mon.out"
  qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu max -m 1024 -display none -vga none -nodefaults \
    -serial "file:$log" -monitor "pipe:$mon" -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0 \
    -device virtio-rng-pci "$@" &
  local qpid=$! line=""
  cat "$mon.out" >/dev/null &
  exec 7>"$mon.in"
  for _ in $(seq 1 360); do
    line=$(grep -a -m1 'kiln: ready' "$log" 2>/dev/null || true)
    [ -n "$line" ] && break
    sleep 0.5
  done
  echo system_powerdown >&7
  for _ in $(seq 1 40); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done
  exec 7>&-
  kill "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true
  echo "${line#kiln: }"
}

# median FIGURE LINES: the median of "FIGURE Xs" over the lines.
median() { sed -n "s/.*$1 \([0-9.]*\)s.*/\1/p" <<<"$2" | sort -n | awk '{v[NR]=$1} END{if (NR) printf "%.2fs", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2); else print "-"}'; }

# medians LINES: the medians of a ready line's three figures.
medians() { echo "ready in $(median 'ready in' "$1"), kernel $(median kernel "$1"), initd $(median initd "$1")"; }
