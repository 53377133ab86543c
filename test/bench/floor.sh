#!/bin/bash
# floor.sh IMAGE_DIR [N]: the kernel's floor for an ISO boot's medium. Boots
# the image's kernel with its initramfs, /init replaced by test/bench/floor,
# the ISO as q35's CD-ROM, N times (default 3): floor inserts only the AHCI
# CD-ROM chain and waits for sr0. Compare with initd's "medium found" line
# (kiln.debug) for the same ISO: what initd adds on the way to the medium.
set -euo pipefail
dir=$(realpath "$1") N=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/kiln-floor-XXXXXX)
trap 'rm -rf "$work"' EXIT
iso=$(ls "$dir"/*.iso | head -1) kernel=$(ls "$dir"/*.vmlinuz | head -1) initrd=$(ls "$dir"/*.initrd | head -1)
mkdir "$work/rd"
zstd -dc "$initrd" | (cd "$work/rd" && cpio -idm --quiet)
(cd "$root" && CGO_ENABLED=0 go build -o "$work/rd/init" ./test/bench/floor)
(cd "$work/rd" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | zstd -q -o "$work/floor.initrd")
mods=scsi_common,scsi_mod,cdrom,sr_mod,libata,libahci,ahci
for i in $(seq 1 "$N"); do
  log="$work/floor-$i.log"
  timeout 60 qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu max -m 1024 -display none -vga none \
    -nodefaults -serial "file:$log" -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0 \
    -cdrom "$iso" -kernel "$kernel" -initrd "$work/floor.initrd" \
    -append "console=ttyS0,115200 floor.mods=$mods floor.wait=/sys/class/block/sr0" >/dev/null 2>&1 &
  q=$!
  for _ in $(seq 1 120); do grep -q 'floor: done' "$log" 2>/dev/null && break; sleep 0.5; done
  kill $q 2>/dev/null || true; wait $q 2>/dev/null || true
  echo "run $i: $(grep -a -o 'floor: \(started at\|modules inserted at\|/sys/class/block/sr0 at\) [^ ]*' "$log" | sed 's/floor: //' | tr '\n' ' ')"
done
