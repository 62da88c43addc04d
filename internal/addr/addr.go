// Package addr turns listen addresses into addresses other hosts can dial.
package addr

import (
	"fmt"
	"net"
)

// Extract returns the host to advertise for a listen host: the host itself when it is a
// specific address, otherwise (empty, 0.0.0.0, ::) the first private IPv4 address of the
// machine's interfaces, then any other non-loopback IPv4, then the loopback address.
func Extract(host string) (string, error) {
	if host != "" && host != "0.0.0.0" && host != "::" && host != "[::]" {
		return host, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("addr: list interfaces: %w", err)
	}
	var public, loopback string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := ipn.IP.To4()
		if ip == nil {
			continue
		}
		switch {
		case ip.IsLoopback():
			if loopback == "" {
				loopback = ip.String()
			}
		case ip.IsPrivate():
			return ip.String(), nil
		case ip.IsGlobalUnicast() && public == "":
			public = ip.String()
		}
	}
	if public != "" {
		return public, nil
	}
	if loopback != "" {
		return loopback, nil
	}
	return "127.0.0.1", nil
}

// Advertise returns the host:port to advertise for a bound listen address.
func Advertise(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("addr: %q: %w", listen, err)
	}
	h, err := Extract(host)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(h, port), nil
}
