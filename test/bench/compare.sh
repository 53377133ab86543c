#!/bin/bash
# compare.sh A B [N]: boots two images N times each (default 9), taking
# turns so that the shared host's slow and fast moments fall on both, and
# prints the median of each ready line's figures. An .iso boots as q35's
# CD-ROM; a .qcow2 as a virtio disk, through an overlay: its first boot
# (STATE created) is not counted, and every boot ends with an ACPI
# power-off so the next one finds its filesystems clean. Used for the
# before/after figures in docs/BENCHMARKS.md.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 A.iso|A.qcow2 B.iso|B.qcow2 [N]" >&2; exit 2; }
A=$(realpath "$1") B=$(realpath "$2") N=${3:-9}
work=$(mktemp -d /tmp/kiln-compare-XXXXXX)
trap 'rm -rf "$work"' EXIT

# media IMAGE NAME: the QEMU arguments that attach IMAGE.
media() {
  case "$1" in
    *.iso) echo "-cdrom $1" ;;
    *.qcow2) echo "-drive file=$work/$2.qcow2,if=virtio,format=qcow2" ;;
    *) echo "$1: not an .iso or .qcow2" >&2; exit 2 ;;
  esac
}
# boot NAME ARGS...: one boot until the ready line, then a power-off; prints the line.
boot() {
  local name=$1; shift
  local log="$work/$name.log" mon="$work/mon"
  rm -f "$log" "$mon.in" "$mon.out"; mkfifo "$mon.in" "$mon.out"
  # shellcheck disable=SC2068
  qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu max -m 1024 -display none -vga none -nodefaults \
    -serial "file:$log" -monitor "pipe:$mon" -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0 \
    -device virtio-rng-pci $@ &
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
  echo "$line"
}
for x in a b; do
  img=$A; [ $x = b ] && img=$B
  if [[ $img == *.qcow2 ]]; then
    qemu-img create -q -f qcow2 -b "$img" -F qcow2 "$work/$x.qcow2"
    boot first-$x $(media "$img" $x) >/dev/null
  fi
done
la="" lb=""
for i in $(seq 1 "$N"); do
  la+="$(boot a$i $(media "$A" a))"$'\n'
  lb+="$(boot b$i $(media "$B" b))"$'\n'
done
median() { sed -n "s/.*$1 \([0-9.]*\)s.*/\1/p" <<<"$2" | sort -n | awk '{v[NR]=$1} END{if (NR) printf "%.2fs", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2); else print "-"}'; }
for x in A B; do
  l=$la; img=$A; [ $x = B ] && { l=$lb; img=$B; }
  echo "$x $img: median of $N: ready in $(median 'ready in' "$l"), kernel $(median kernel "$l"), initd $(median initd "$l")"
  echo "  initd per run: $(sed -n 's/.*initd \([0-9.]*\)s.*/\1/p' <<<"$l" | tr '\n' ' ')"
done
