package main

// An SSH server in the test process: exec runs /bin/sh -c on this machine, env requests are
// accepted for the names acceptEnv lists (as sshd's AcceptEnv), and the sftp subsystem serves
// this machine's files. It lets the tests run the real client code end to end.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestMain(m *testing.M) {
	// The official SSHConfig adds the agent at $SSH_AUTH_SOCK; the tests that want it set it.
	os.Unsetenv("SSH_AUTH_SOCK")
	os.Exit(m.Run())
}

type testServer struct {
	addr      string
	hostKey   ssh.PublicKey
	clientKey string // PEM private key the server accepts
	acceptEnv map[string]bool
	mu        sync.Mutex
	sftpCount int
	execCount int
	lastEnv   map[string]string
}

func newKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, string(pem.EncodeToMemory(block))
}

func startServer(t *testing.T, acceptEnv ...string) *testServer {
	t.Helper()
	hostSigner, _ := newKey(t)
	clientSigner, clientPEM := newKey(t)
	s := &testServer{hostKey: hostSigner.PublicKey(), clientKey: clientPEM, acceptEnv: map[string]bool{}}
	for _, e := range acceptEnv {
		s.acceptEnv[e] = true
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(clientSigner.PublicKey().Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == "sesame" {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c, cfg)
		}
	}()
	return s
}

func (s *testServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.session(ch, creqs)
	}
}

func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	env := map[string]string{}
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			_ = ssh.Unmarshal(req.Payload, &kv)
			ok := s.acceptEnv[kv.Name]
			if ok {
				env[kv.Name] = kv.Value
			}
			_ = req.Reply(ok, nil)
		case "exec":
			var p struct{ Command string }
			_ = ssh.Unmarshal(req.Payload, &p)
			_ = req.Reply(true, nil)
			s.mu.Lock()
			s.execCount++
			s.lastEnv = env
			s.mu.Unlock()
			cmd := exec.Command("/bin/sh", "-c", p.Command)
			cmd.Env = os.Environ()
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
			code := 0
			if err := cmd.Run(); err != nil {
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					code = exit.ExitCode()
				} else {
					code = 127
				}
			}
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
			return
		case "subsystem":
			var p struct{ Name string }
			_ = ssh.Unmarshal(req.Payload, &p)
			if p.Name != "sftp" {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			s.mu.Lock()
			s.sftpCount++
			s.mu.Unlock()
			srv, err := sftp.NewServer(ch)
			if err == nil {
				_ = srv.Serve()
			}
			return
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

func (s *testServer) counts() (execs, sftps int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.execCount, s.sftpCount
}

func deleteReq(props *structpb.Struct) *pulumirpc.DeleteRequest {
	return &pulumirpc.DeleteRequest{Urn: testURN, Properties: props}
}

func (s *testServer) host() string { return strings.Split(s.addr, ":")[0] }

func (s *testServer) port() float64 {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := net.LookupPort("tcp", p)
	return float64(n)
}

func (s *testServer) hostKeyLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.hostKey)))
}

// connection is the checked connection input for this server, with extra fields.
func (s *testServer) connection(extra map[string]any) resource.PropertyValue {
	m := resource.PropertyMap{
		"host":           resource.NewProperty(s.host()),
		"port":           resource.NewProperty(s.port()),
		"user":           resource.NewProperty("deploy"),
		"privateKey":     resource.MakeSecret(resource.NewProperty(s.clientKey)),
		"dialErrorLimit": resource.NewProperty(10.0),
		"perDialTimeout": resource.NewProperty(15.0),
	}
	for k, v := range extra {
		if v == nil {
			delete(m, resource.PropertyKey(k))
			continue
		}
		m[resource.PropertyKey(k)] = resource.NewPropertyValue(v)
	}
	return resource.MakeSecret(resource.NewProperty(m))
}

// fakeHost records what the provider logs.
type logEntry struct {
	sev       diag.Severity
	msg       string
	ephemeral bool
}

type fakeHost struct {
	mu      sync.Mutex
	entries []logEntry
}

func (h *fakeHost) Log(_ context.Context, sev diag.Severity, _ resource.URN, msg string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, logEntry{sev, msg, false})
	return nil
}

func (h *fakeHost) LogStatus(_ context.Context, sev diag.Severity, _ resource.URN, msg string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, logEntry{sev, msg, true})
	return nil
}

func (h *fakeHost) all() []logEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logEntry(nil), h.entries...)
}

const testURN = "urn:pulumi:dev::proj::command:remote:Command::echo"

func testLog(h *fakeHost) opLog {
	return opLog{ctx: context.Background(), host: h, urn: resource.URN(testURN)}
}

// noWait makes the dial retries immediate and records the delays asked for.
func noWait(t *testing.T) *[]time.Duration {
	t.Helper()
	var delays []time.Duration
	var mu sync.Mutex
	prev := retryAfter
	retryAfter = func(d time.Duration) <-chan time.Time {
		mu.Lock()
		delays = append(delays, d)
		mu.Unlock()
		c := make(chan time.Time, 1)
		c <- time.Now()
		return c
	}
	t.Cleanup(func() { retryAfter = prev })
	return &delays
}

var _ io.Closer = nopCloser{}
