package qemu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmpCommand opens the monitor socket, negotiates capabilities and runs one command.
func qmpCommand(sock, command string, args map[string]any) (string, error) {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("QMP %s: %w", command, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		return "", fmt.Errorf("QMP greeting: %w", err)
	}
	send := func(cmd string, a map[string]any) (string, error) {
		req := map[string]any{"execute": cmd}
		if a != nil {
			req["arguments"] = a
		}
		b, _ := json.Marshal(req)
		if _, err := c.Write(append(b, '\n')); err != nil {
			return "", err
		}
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return "", err
			}
			var m map[string]json.RawMessage
			if json.Unmarshal(line, &m) != nil {
				continue
			}
			if _, ok := m["event"]; ok {
				continue
			}
			if e, ok := m["error"]; ok {
				return "", fmt.Errorf("QMP %s: %s", cmd, e)
			}
			return string(m["return"]), nil
		}
	}
	if _, err := send("qmp_capabilities", nil); err != nil {
		return "", err
	}
	return send(command, args)
}
