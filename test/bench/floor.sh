#!/bin/bash
# floor.sh IMAGE_DIR [N]: the kernel's floor for an ISO boot's medium. Boots
# the image's kernel with its initramfs, /init replaced by test/bench/floor,
# the ISO as q35's CD-ROM, N times (default 3): floor inserts only the AHCI
# CD-ROM chain and waits for sr0. Compare with initd's "medium found" line
# (kiln.debug) for the same ISO: what initd adds on the way to the medium.
# With DISK=1 the qcow2 is attached as a virtio disk instead, floor
# inserts every driver and filesystem module a disk boot of it loads
# before ready (MODS= overrides the list) and waits for vda.
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
mods=${MODS:-scsi_common,scsi_mod,cdrom,sr_mod,libata,libahci,ahci} wait=/sys/class/block/sr0
media=(-cdrom "$iso")
if [ "${DISK:-}" = 1 ]; then
  mods=${MODS:-virtio_pci_legacy_dev,virtio_pci_modern_dev,virtio_ring,virtio,virtio_pci,virtio_blk,scsi_common,scsi_mod,libata,libahci,ahci,squashfs,crc32c_intel,crc32c_generic,crc16,mbcache,jbd2,ext4,overlay,failover,net_failover,virtio_net,button,evdev}
  wait=/sys/class/block/vda
  qemu-img create -q -f qcow2 -b "$(ls "$dir"/*.qcow2 | head -1)" -F qcow2 "$work/disk.qcow2"
  media=(-drive "file=$work/disk.qcow2,if=virtio,format=qcow2")
fi
for i in $(seq 1 "$N"); do
  log="$work/floor-$i.log"
  timeout 60 qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu max -m 1024 -display none -vga none \
    -nodefaults -serial "file:$log" -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0 \
    "${media[@]}" -kernel "$kernel" -initrd "$work/floor.initrd" \
    -append "console=ttyS0,115200 floor.mods=$mods floor.wait=$wait" >/dev/null 2>&1 &
  q=$!
  for _ in $(seq 1 120); do grep -q 'floor: done' "$log" 2>/dev/null && break; sleep 0.5; done
  kill $q 2>/dev/null || true; wait $q 2>/dev/null || true
  echo "run $i: $(grep -a -o "floor: \(started at\|modules inserted at\|$wait at\) [^ ]*" "$log" | sed 's/floor: //' | tr '\n' ' ')"
  grep -a 'floor: module .*: [^o]' "$log" | grep -v ': ok in' || true
done
