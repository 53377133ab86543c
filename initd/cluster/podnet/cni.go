package podnet

import (
	"encoding/json"
	"net/netip"
)

// BridgeConfList is the CNI configuration of the node's pod network in
// host-gateway mode: a Linux bridge (cni0) as every pod's gateway, with
// host-local addresses from the node's own pod range(s), hairpin mode so a
// pod reaches itself through a Service, and portmap for hostPorts. Routes
// to other nodes' ranges are the host's business, not the plugin's.
func BridgeConfList(ranges []netip.Prefix) ([]byte, error) {
	type rng struct {
		Subnet string `json:"subnet"`
	}
	type route struct {
		Dst string `json:"dst"`
	}
	var sets [][]rng
	var routes []route
	for _, p := range ranges {
		sets = append(sets, []rng{{p.String()}})
		if p.Addr().Is4() {
			routes = append(routes, route{"0.0.0.0/0"})
		} else {
			routes = append(routes, route{"::/0"})
		}
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "kiln",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      "cni0",
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": sets,
					"routes": routes,
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
