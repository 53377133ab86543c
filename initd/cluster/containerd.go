package cluster

import (
	"fmt"
	"strconv"
)

// ContainerdTOML is containerd's configuration (version 3, containerd 2.x)
// for a kiln node: the CRI with the overlayfs snapshotter, runc with
// cgroupfs (there is no systemd to delegate cgroups to), the sandbox image
// pinned to the baked pause reference, CNI from /opt/cni/bin and
// /etc/cni/net.d, and no registry configuration at all: every image the
// cluster runs is imported from the image's OCI layout, nothing is pulled.
// AppArmor is off: the image has no apparmor_parser to load profiles with.
func ContainerdTOML(sandboxImage string) []byte {
	q := strconv.Quote
	return fmt.Appendf(nil, `# Written by initd at every boot (kiln: initd/cluster); edits do not survive.
version = 3
root = %s
state = %s

[grpc]
  address = %s

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'

  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %s

[plugins.'io.containerd.cri.v1.runtime']
  disable_apparmor = true

  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '/usr/bin/runc'
        SystemdCgroup = false

  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%s]
    conf_dir = %s
`, q(ContainerdRoot), q(ContainerdState), q(ContainerdSocket), q(sandboxImage), q(CNIBinDir), q(CNIConfDir))
}
