package machineconfig

// ForRole makes the machine config of a role from the cluster settings and
// the full secrets (secrets.yaml): each role gets only what it needs.
// Workers get the cluster CA certificate, the bootstrap token and the
// node-API material; init and control-plane nodes also get the Kubernetes
// CA keys, the service-account key and the certificate key. No node gets
// the node-API CA key.
func ForRole(role string, c Cluster, all *Secrets) *MachineConfig {
	s := &Secrets{BootstrapToken: all.BootstrapToken}
	if all.NodeAPI != nil {
		s.NodeAPI = &NodeAPISecrets{Issuer: all.NodeAPI.Issuer}
		if all.NodeAPI.CA != nil {
			s.NodeAPI.CA = &CertKey{Cert: all.NodeAPI.CA.Cert}
		}
	}
	if role == RoleWorker {
		if all.CA != nil {
			s.CA = &CertKey{Cert: all.CA.Cert}
		}
	} else {
		s.CA, s.FrontProxyCA, s.EtcdCA = all.CA, all.FrontProxyCA, all.EtcdCA
		s.ServiceAccount, s.CertificateKey = all.ServiceAccount, all.CertificateKey
	}
	return &MachineConfig{APIVersion: APIVersion, Kind: KindMachineConfig, Spec: Spec{Role: role, Cluster: c, Secrets: s}}
}
