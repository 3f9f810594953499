package main

// The SSH side, as the official provider does it: connection.go (SSHConfig, Dial,
// dialWithRetry), commandOutputs.go (run) and util/util.go (LogOutput) in
// pulumi/pulumi-command v1.2.1.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/retry"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

const (
	dialErrorDefault   = 10
	dialErrorUnlimited = -1
)

// connBase is connectionBase (connection.go): a nil field is one the inputs do not set.
type connBase struct {
	User               *string
	Password           *string
	Host               *string
	Port               *float64
	PrivateKey         *string
	PrivateKeyPassword *string
	AgentSocketPath    *string
	DialErrorLimit     *int
	PerDialTimeout     *int
	HostKey            *string
}

// connection is command:remote:Connection.
type connection struct {
	connBase
	Proxy *connBase
}

func parseConnection(v resource.PropertyValue) (*connection, error) {
	v, _, _ = peel(v)
	if !v.IsObject() {
		return nil, fmt.Errorf("connection: expected an object")
	}
	m := v.ObjectValue()
	c := &connection{connBase: parseConnBase(m)}
	if p, _, _ := peel(m["proxy"]); p.IsObject() {
		b := parseConnBase(p.ObjectValue())
		c.Proxy = &b
	}
	return c, nil
}

// parseConnBase reads the fields; user, port and perDialTimeout get the defaults Check gives
// them (connection.go Annotate), as the official code dereferences them unconditionally.
func parseConnBase(m resource.PropertyMap) connBase {
	strp := func(k string) *string {
		if v, _, _ := peel(m[resource.PropertyKey(k)]); v.IsString() {
			s := v.StringValue()
			return &s
		}
		return nil
	}
	nump := func(k string) *float64 {
		if v, _, _ := peel(m[resource.PropertyKey(k)]); v.IsNumber() {
			n := v.NumberValue()
			return &n
		}
		return nil
	}
	intp := func(k string) *int {
		if n := nump(k); n != nil {
			i := int(*n)
			return &i
		}
		return nil
	}
	b := connBase{
		User: strp("user"), Password: strp("password"), Host: strp("host"), Port: nump("port"),
		PrivateKey: strp("privateKey"), PrivateKeyPassword: strp("privateKeyPassword"),
		AgentSocketPath: strp("agentSocketPath"), DialErrorLimit: intp("dialErrorLimit"),
		PerDialTimeout: intp("perDialTimeout"), HostKey: strp("hostKey"),
	}
	if b.User == nil {
		root := "root"
		b.User = &root
	}
	if b.Port == nil {
		port := 22.0
		b.Port = &port
	}
	if b.PerDialTimeout == nil {
		t := 15
		b.PerDialTimeout = &t
	}
	if b.Host == nil {
		empty := ""
		b.Host = &empty
	}
	return b
}

func (b connBase) endpoint() string {
	return net.JoinHostPort(*b.Host, fmt.Sprintf("%d", int(*b.Port)))
}

func (b connBase) dialErrorLimit() int {
	if b.DialErrorLimit == nil {
		return dialErrorDefault
	}
	return *b.DialErrorLimit
}

// sshConfig is connectionBase.SSHConfig (connection.go:85): a set hostKey (even an empty one)
// must parse as an authorized_keys line and is then the only key and key type accepted; an
// unset one accepts any key. Auth: privateKey, then password (also answering
// keyboard-interactive), then the agent at agentSocketPath or $SSH_AUTH_SOCK. The returned
// closer closes the agent connection, if any.
func (b connBase) sshConfig() (*ssh.ClientConfig, io.Closer, error) {
	var hostKeyCallback ssh.HostKeyCallback
	var hostKeyAlgorithms []string
	if b.HostKey != nil {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*b.HostKey))
		if err != nil {
			return nil, nil, fmt.Errorf("failed to parse host key: %w", err)
		}
		hostKeyCallback = ssh.FixedHostKey(pk)
		hostKeyAlgorithms = []string{pk.Type()}
	} else {
		hostKeyCallback = ssh.InsecureIgnoreHostKey() //nolint:gosec // as the official provider: no hostKey, no check
	}
	cfg := &ssh.ClientConfig{
		User:              *b.User,
		HostKeyCallback:   hostKeyCallback,
		HostKeyAlgorithms: hostKeyAlgorithms,
		Timeout:           time.Second * time.Duration(*b.PerDialTimeout),
	}
	if b.PrivateKey != nil {
		var signer ssh.Signer
		var err error
		if b.PrivateKeyPassword != nil {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*b.PrivateKey), []byte(*b.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*b.PrivateKey))
		}
		if err != nil {
			return nil, nil, err
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeys(signer))
	}
	if b.Password != nil {
		password := *b.Password
		cfg.Auth = append(cfg.Auth, ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}))
	}
	socket := b.AgentSocketPath
	if socket == nil {
		if env := os.Getenv("SSH_AUTH_SOCK"); env != "" {
			socket = &env
		}
	}
	var closer io.Closer = nopCloser{}
	if socket != nil {
		conn, err := net.Dial("unix", *socket)
		if err != nil {
			return nil, nil, err
		}
		closer = conn
		cfg.Auth = append(cfg.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	}
	return cfg, closer, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// retryAfter is the retry package's wait; the tests replace it.
var retryAfter = time.After

// dialWithRetry is connection.go:150: try f until it succeeds, with the retry package's
// backoff (100ms, x1.5, at most 5s), reporting each failure as a status message; after
// maxAttempts failed retries (-1: never) fail with the last error. Every error is retried,
// authentication and host key errors included, as the official provider does.
func dialWithRetry[T any](ctx context.Context, lg opLog, msg string, maxAttempts int, f func() (T, error)) (T, error) {
	r := retry.Retryer{After: func(d time.Duration) <-chan time.Time { return retryAfter(d) }}
	ok, data, err := r.Until(ctx, retry.Acceptor{
		Accept: func(try int, _ time.Duration) (bool, any, error) {
			result, userErr := f()
			if userErr == nil {
				return true, result, nil
			}
			dials := try + 1
			if maxAttempts > dialErrorUnlimited && dials > maxAttempts {
				return true, nil, fmt.Errorf("after %d failed attempts: %w", try, userErr)
			}
			limit := strconv.Itoa(maxAttempts)
			if maxAttempts == dialErrorUnlimited {
				limit = "inf"
			}
			lg.status(fmt.Sprintf("%s %d/%s failed: retrying", msg, dials, limit))
			return false, nil, nil
		},
	})
	var zero T
	if ok && err == nil {
		return data.(T), nil
	}
	if err == nil {
		err = ctx.Err()
	}
	return zero, err
}

// dial is Connection.Dial (connection.go:190), through the proxy when there is one.
func (c *connection) dial(ctx context.Context, lg opLog) (*ssh.Client, error) {
	cfg, closer, err := c.sshConfig()
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	endpoint := c.endpoint()
	tries := c.dialErrorLimit()
	if c.Proxy == nil {
		return dialWithRetry(ctx, lg, "Dial", tries, func() (*ssh.Client, error) {
			return ssh.Dial("tcp", endpoint, cfg)
		})
	}
	proxyCfg, proxyCloser, err := c.Proxy.sshConfig()
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	defer proxyCloser.Close()
	proxyClient, err := dialWithRetry(ctx, lg, "Dial proxy", c.Proxy.dialErrorLimit(), func() (*ssh.Client, error) {
		return ssh.Dial("tcp", c.Proxy.endpoint(), proxyCfg)
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	conn, err := dialWithRetry(ctx, lg, "Dial from proxy", tries, func() (net.Conn, error) {
		return proxyClient.Dial("tcp", endpoint)
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	var chans <-chan ssh.NewChannel
	var reqs <-chan *ssh.Request
	sshConn, err := dialWithRetry(ctx, lg, "Dial", tries, func() (ssh.Conn, error) {
		cc, ch, rq, err := ssh.NewClientConn(conn, endpoint, cfg)
		chans, reqs = ch, rq
		return cc, err
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return ssh.NewClient(sshConn, chans, reqs), nil
}

// commandRun is what one run of a command needs: the Command's state at that point
// (CommandOutputs in the official provider, whose run method this is).
type commandRun struct {
	cmd                    string
	environment            map[string]string
	addPreviousOutputInEnv *bool
	stdout, stderr         string // the previous run's outputs
	stdin                  *string
	logging                *string
}

// setenvMessage is the diagnostic logAndWrapSetenvErr (commandOutputs.go:110) logs.
func setenvMessage(key string) string {
	return fmt.Sprintf("Unable to set '%s'. This only works if your SSH server is configured to accept\n"+
		"\tthese variables via AcceptEnv. Alternatively, if a Bash-like shell runs the command on the remote host, you could\n"+
		"\tprefix the command itself with the variables in the form 'VAR=value command'", key)
}

func shouldLog(logging *string, stream string) bool {
	return logging == nil || *logging == stream || *logging == "stdoutAndStderr"
}

// run is CommandOutputs.run (commandOutputs.go:30): environment first (a refused variable is
// an error, logged as one), then PULUMI_COMMAND_STDOUT/STDERR from the previous run when
// addPreviousOutputInEnv is unset or true and they are not empty (a refused one is a warning),
// stdin when not empty. The logged streams go, line by line, to status messages; a failure is
// "<ssh error>: running <cmd>:\n<stdout and stderr as they came>"; on success the outputs lose
// one trailing newline.
func (r commandRun) run(ctx context.Context, lg opLog, conn *connection) (stdout, stderr string, err error) {
	client, err := conn.dial(ctx, lg)
	if err != nil {
		return "", "", err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", "", err
	}
	defer session.Close()

	keys := make([]string, 0, len(r.environment))
	for k := range r.environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := session.Setenv(k, r.environment[k]); err != nil {
			lg.log(diag.Error, setenvMessage(k))
			return "", "", fmt.Errorf("could not set environment variable %q: %w", k, err)
		}
	}
	if r.addPreviousOutputInEnv == nil || *r.addPreviousOutputInEnv {
		for _, kv := range [][2]string{{"PULUMI_COMMAND_STDOUT", r.stdout}, {"PULUMI_COMMAND_STDERR", r.stderr}} {
			if kv[1] != "" {
				if err := session.Setenv(kv[0], kv[1]); err != nil {
					lg.log(diag.Warning, setenvMessage(kv[0]))
				}
			}
		}
	}
	if r.stdin != nil && len(*r.stdin) > 0 {
		session.Stdin = strings.NewReader(*r.stdin)
	}

	var outBuf, errBuf bytes.Buffer
	both := &lockedBuffer{}
	lines := &lineSplitter{emit: lg.status}
	outW := []io.Writer{&outBuf, both}
	if shouldLog(r.logging, "stdout") {
		outW = append(outW, lines)
	}
	errW := []io.Writer{&errBuf, both}
	if shouldLog(r.logging, "stderr") {
		errW = append(errW, lines)
	}
	session.Stdout = io.MultiWriter(outW...)
	session.Stderr = io.MultiWriter(errW...)

	err = session.Run(r.cmd)
	lines.flush()
	if err != nil {
		return "", "", fmt.Errorf("%w: running %q:\n%s", err, r.cmd, both.String())
	}
	return strings.TrimSuffix(outBuf.String(), "\n"), strings.TrimSuffix(errBuf.String(), "\n"), nil
}

// lockedBuffer collects stdout and stderr together; the session writes them from two goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineSplitter cuts what both logged streams write (one pipe in the official provider) into
// lines as bufio.ScanLines does: at "\n", dropping one "\r" before it; the last line, if it has
// no newline, at the end.
type lineSplitter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(string)
}

func (l *lineSplitter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(string(dropCR(l.buf[:i])))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *lineSplitter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(string(dropCR(l.buf)))
		l.buf = nil
	}
}

func dropCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}
