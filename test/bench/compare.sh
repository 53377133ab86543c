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
. "$(dirname "$0")/boot.sh"
for x in a b; do
  img=$A; [ $x = b ] && img=$B
  if [[ $img == *.qcow2 ]]; then
    qemu-img create -q -f qcow2 -b "$img" -F qcow2 "$work/$x.qcow2"
    boot "$work/first-$x.log" $(media "$img" $x) >/dev/null
  fi
done
la="" lb=""
for i in $(seq 1 "$N"); do
  la+="$(boot "$work/a$i.log" $(media "$A" a))"$'\n'
  lb+="$(boot "$work/b$i.log" $(media "$B" b))"$'\n'
done
for x in A B; do
  l=$la; img=$A; [ $x = B ] && { l=$lb; img=$B; }
  echo "$x $img: median of $N: $(medians "$l")"
  echo "  initd per run: $(sed -n 's/.*initd \([0-9.]*\)s.*/\1/p' <<<"$l" | tr '\n' ' ')"
done
