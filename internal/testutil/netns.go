package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// netnsEnv names the namespace a re-run test binary runs in.
const netnsEnv = "MICRO_TEST_NETNS"

// netnsReason says why tests cannot run in a namespace of their own ("" when they can,
// or already do).
var netnsReason string

// MainInNetns is the TestMain of packages whose tests send multicast (mDNS), which must
// never leave the machine: outside a namespace it creates a network namespace holding
// a loopback interface with multicast on and a bridge without ports, mdns0
// (10.253.0.1/24, fe80::1), standing for a LAN; it runs the test binary again inside it
// with the same arguments, removes the namespace and exits with the binary's status.
// Inside, it runs the tests with goleak.VerifyTestMain. Without root or the ip command
// (iproute2), the tests run here and NeedNetns skips them (fails them under
// MICRO_TEST_REQUIRE=1).
func MainInNetns(m *testing.M) {
	if os.Getenv(netnsEnv) != "" {
		goleak.VerifyTestMain(m)
		return
	}
	ip, err := exec.LookPath("ip")
	switch {
	case os.Geteuid() != 0:
		netnsReason = "needs root to create a network namespace (the tests multicast and must not do it on this machine's network)"
	case err != nil:
		netnsReason = "needs the ip command (Debian package iproute2) to create a network namespace"
	}
	if netnsReason != "" {
		goleak.VerifyTestMain(m)
		return
	}
	removeStaleNetns(ip)
	name := fmt.Sprintf("micro-test-%d", os.Getpid())
	if err := setupNetns(ip, name); err != nil {
		_ = exec.Command(ip, "netns", "del", name).Run()
		netnsReason = err.Error()
		goleak.VerifyTestMain(m)
		return
	}
	cmd := exec.Command(ip, append([]string{"netns", "exec", name, os.Args[0]}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), netnsEnv+"="+name)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	err = cmd.Run()
	_ = exec.Command(ip, "netns", "del", name).Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
		if code < 0 {
			code = 1
		}
	case err != nil:
		fmt.Fprintln(os.Stderr, "testutil: running the tests in a network namespace:", err)
		code = 1
	}
	os.Exit(code)
}

func setupNetns(ip, name string) error {
	for _, args := range [][]string{
		{"netns", "add", name},
		{"-n", name, "link", "set", "lo", "up"},
		{"-n", name, "link", "set", "lo", "multicast", "on"},
		// a LAN of one host: a bridge without ports, with an IPv4 and an IPv6 address
		{"-n", name, "link", "add", "mdns0", "type", "bridge"},
		{"-n", name, "link", "set", "mdns0", "up"},
		{"-n", name, "addr", "add", "10.253.0.1/24", "dev", "mdns0"},
		{"-n", name, "addr", "add", "fe80::1/64", "dev", "mdns0", "nodad"},
	} {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("cannot create a network namespace (ip %s: %v: %s)", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// removeStaleNetns deletes namespaces left by test binaries that were killed.
func removeStaleNetns(ip string) {
	out, err := exec.Command(ip, "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "micro-test-") {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(f[0], "micro-test-"))
		if err != nil {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = exec.Command(ip, "netns", "del", f[0]).Run()
		}
	}
}

// InNetns reports whether the tests run in a namespace made by MainInNetns.
func InNetns() bool { return os.Getenv(netnsEnv) != "" }

// NeedNetns skips the test (or fails it under MICRO_TEST_REQUIRE=1) unless it runs in a
// namespace made by MainInNetns.
func NeedNetns(t testing.TB) {
	t.Helper()
	if InNetns() {
		return
	}
	reason := netnsReason
	if reason == "" {
		reason = "the package's TestMain is not testutil.MainInNetns"
	}
	SkipOrFail(t, "multicast test skipped: %s", reason)
}
