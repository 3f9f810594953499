package main

import (
	"context"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"golang.org/x/crypto/ssh"
)

// The connection inputs of connection.go:41-52 in pulumi/pulumi-command v1.2.1: secrets
// unwrapped, unset fields nil; user, port and perDialTimeout default as Check defaults them
// (connection.go:57-78), dialErrorLimit when unset as getDialErrorLimit (connection.go:245-250);
// the endpoint uses int(port) (connection.go:196).
func TestParseConnection(t *testing.T) {
	c, err := parseConnection(resource.MakeSecret(resource.NewProperty(resource.PropertyMap{
		"host": resource.NewProperty("example.org"), "port": resource.NewProperty(2222.9),
		"user":       resource.NewProperty("deploy"),
		"privateKey": resource.MakeSecret(resource.NewProperty("KEY")), "hostKey": resource.NewProperty("ssh-ed25519 AAAA"),
		"perDialTimeout": resource.NewProperty(3.0), "dialErrorLimit": resource.NewProperty(-1.0),
		"proxy": resource.NewProperty(resource.PropertyMap{"host": resource.NewProperty("bastion")}),
	})))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Host != "example.org" || *c.User != "deploy" || *c.PrivateKey != "KEY" || *c.HostKey != "ssh-ed25519 AAAA" ||
		*c.PerDialTimeout != 3 || c.dialErrorLimit() != -1 || c.Password != nil || c.PrivateKeyPassword != nil {
		t.Errorf("parsed %+v", c.connBase)
	}
	if c.endpoint() != "example.org:2222" {
		t.Errorf("endpoint %s", c.endpoint())
	}
	if c.Proxy == nil || *c.Proxy.Host != "bastion" || *c.Proxy.User != "root" || c.Proxy.endpoint() != "bastion:22" {
		t.Errorf("proxy %+v", c.Proxy)
	}

	c, err = parseConnection(resource.NewProperty(resource.PropertyMap{"host": resource.NewProperty("::1")}))
	if err != nil {
		t.Fatal(err)
	}
	if *c.User != "root" || c.endpoint() != "[::1]:22" || *c.PerDialTimeout != 15 || c.dialErrorLimit() != 10 ||
		c.HostKey != nil || c.PrivateKey != nil || c.Proxy != nil {
		t.Errorf("defaults %+v", c.connBase)
	}
}

// connection.go:85-148: a set hostKey must parse with ssh.ParseAuthorizedKey (an empty one is
// refused: "failed to parse host key: ssh: no key found") and pins both the key and its type;
// an unset one ignores host keys. privateKeyPassword, when set (even empty), decrypts the key;
// a password also answers keyboard-interactive; perDialTimeout is the dial timeout; an
// agent socket that cannot be reached is an error.
func TestSSHConfig(t *testing.T) {
	_, keyPEM := newKey(t)
	hostSigner, _ := newKey(t)
	hostLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey())))
	strp := func(s string) *string { return &s }
	base := func() connBase {
		return parseConnBase(resource.PropertyMap{"host": resource.NewProperty("h")})
	}

	b := base()
	b.HostKey = strp("")
	if _, _, err := b.sshConfig(); err == nil || err.Error() != "failed to parse host key: ssh: no key found" {
		t.Errorf("empty hostKey: %v", err)
	}
	b.HostKey = strp("AAAAC3NzaC1lZDI1NTE5") // no key type
	if _, _, err := b.sshConfig(); err == nil || err.Error() != "failed to parse host key: ssh: no key found" {
		t.Errorf("bare base64: %v", err)
	}
	b.HostKey = strp(hostLine + " comment")
	cfg, _, err := b.sshConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.HostKeyAlgorithms, []string{"ssh-ed25519"}) {
		t.Errorf("HostKeyAlgorithms %v", cfg.HostKeyAlgorithms)
	}
	if err := cfg.HostKeyCallback("h:22", &net.TCPAddr{}, hostSigner.PublicKey()); err != nil {
		t.Errorf("pinned key refused: %v", err)
	}
	other, _ := newKey(t)
	if err := cfg.HostKeyCallback("h:22", &net.TCPAddr{}, other.PublicKey()); err == nil || err.Error() != "ssh: host key mismatch" {
		t.Errorf("other key: %v", err)
	}

	b = base()
	cfg, _, err = b.sshConfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.HostKeyCallback("h:22", &net.TCPAddr{}, other.PublicKey()); err != nil || cfg.HostKeyAlgorithms != nil {
		t.Errorf("unset hostKey checks keys: %v", err)
	}
	if len(cfg.Auth) != 0 || cfg.User != "root" || cfg.Timeout != 15*time.Second {
		t.Errorf("no auth: %d methods, user %s, timeout %v", len(cfg.Auth), cfg.User, cfg.Timeout)
	}

	b.PrivateKey, b.Password = strp(keyPEM), strp("pw")
	if cfg, _, err = b.sshConfig(); err != nil || len(cfg.Auth) != 3 {
		t.Errorf("key and password: %v methods, %v", len(cfg.Auth), err)
	}
	b.PrivateKeyPassword = strp("")
	if _, _, err := b.sshConfig(); err == nil || err.Error() != "ssh: key is not password protected" {
		t.Errorf("privateKeyPassword on a plain key: %v", err)
	}
	b.PrivateKeyPassword, b.PrivateKey = nil, strp("not a key")
	if _, _, err := b.sshConfig(); err == nil || err.Error() != "ssh: no key found" {
		t.Errorf("bad key: %v", err)
	}

	b = base()
	t.Setenv("SSH_AUTH_SOCK", "/nonexistent/agent.sock")
	if _, _, err := b.sshConfig(); err == nil || !strings.Contains(err.Error(), "dial unix /nonexistent/agent.sock") {
		t.Errorf("SSH_AUTH_SOCK: %v", err)
	}
	b.AgentSocketPath = strp("/nonexistent/other.sock")
	if _, _, err := b.sshConfig(); err == nil || !strings.Contains(err.Error(), "dial unix /nonexistent/other.sock") {
		t.Errorf("agentSocketPath: %v", err)
	}
}

// connection.go:150-187 with sdk/go/common/util/retry (until.go:40-42: 100ms, x1.5, at most
// 5s): every failure is retried, host key mismatches included, each one a status message
// "Dial N/LIMIT failed: retrying"; after dialErrorLimit retries the error is
// "after N failed attempts: <ssh error>".
func TestDialRetriesHostKeyMismatch(t *testing.T) {
	delays := noWait(t)
	s := startServer(t)
	other, _ := newKey(t)
	h := &fakeHost{}
	props := commandProps(s, map[string]any{"create": "true"})
	props["connection"] = s.connection(map[string]any{
		"hostKey": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other.PublicKey()))),
	})
	_, _, err := createResource(context.Background(), testLog(h), typeCommand, props, false)
	if err == nil || err.Error() != "after 10 failed attempts: ssh: handshake failed: ssh: host key mismatch" {
		t.Fatalf("error %v", err)
	}
	var want []string
	for i := 1; i <= 10; i++ {
		want = append(want, "Dial "+itoa(i)+"/10 failed: retrying")
	}
	if got := statuses(h.all()); !reflect.DeepEqual(got, want) {
		t.Errorf("statuses %q", got)
	}
	wantDelays := []time.Duration{100000000, 150000000, 225000000, 337500000, 506250000, 759375000,
		1139062500, 1708593750, 2562890625, 3844335937}
	if !reflect.DeepEqual(*delays, wantDelays) {
		t.Errorf("delays %v", *delays)
	}
	if persistent(h.all()) != nil {
		t.Errorf("diagnostics %v", persistent(h.all()))
	}

	// The right key: one dial, no retries.
	h = &fakeHost{}
	props["connection"] = s.connection(map[string]any{"hostKey": s.hostKeyLine()})
	if _, _, err := createResource(context.Background(), testLog(h), typeCommand, props, false); err != nil || len(h.all()) != 0 {
		t.Errorf("pinned key: %v %v", err, h.all())
	}
}

// connection.go:252-255 and :164-169: dialErrorLimit 0 fails at the first error ("after 0
// failed attempts"); -1 retries without end ("Dial N/inf"), until the operation is cancelled
// (connection.go:177-186: the context's error).
func TestDialErrorLimitEdges(t *testing.T) {
	noWait(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	host, port, _ := net.SplitHostPort(addr)
	mk := func(limit float64) *connection {
		c, _ := parseConnection(resource.NewProperty(resource.PropertyMap{
			"host": resource.NewProperty(host), "port": resource.NewProperty(float64(atoi(port))),
			"password": resource.NewProperty("x"), "dialErrorLimit": resource.NewProperty(limit),
		}))
		return c
	}
	h := &fakeHost{}
	_, err = mk(0).dial(context.Background(), testLog(h))
	if err == nil || !strings.HasPrefix(err.Error(), "after 0 failed attempts: dial tcp "+addr+": connect: connection refused") {
		t.Errorf("limit 0: %v", err)
	}
	if len(h.all()) != 0 {
		t.Errorf("limit 0 logged %v", h.all())
	}

	ctx, cancel := context.WithCancel(context.Background())
	h = &fakeHost{}
	done := make(chan error)
	go func() {
		_, err := mk(-1).dial(ctx, opLog{ctx: ctx, host: h, urn: testURN})
		done <- err
	}()
	for len(h.all()) < 12 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	err = <-done
	if err == nil || err.Error() != "context canceled" {
		t.Errorf("unlimited: %v", err)
	}
	if got := statuses(h.all()); got[11] != "Dial 12/inf failed: retrying" {
		t.Errorf("statuses %v", got[:12])
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
