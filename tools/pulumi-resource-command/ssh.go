package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// connection holds the subset of command:remote:Connection this build supports.
type connection struct {
	Host               string
	Port               int
	User               string
	Password           string
	PrivateKey         string
	PrivateKeyPassword string
	HostKey            string
	PerDialTimeout     int
	DialErrorLimit     int
}

func (c connection) address() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// hostKeyCallback pins the server key when hostKey is set, as the official provider does.
func (c connection) hostKeyCallback() (ssh.HostKeyCallback, error) {
	if strings.TrimSpace(c.HostKey) == "" {
		return ssh.InsecureIgnoreHostKey(), nil
	}
	want, err := parseHostKey(c.HostKey)
	if err != nil {
		return nil, fmt.Errorf("connection.hostKey: %w (expected one line like \"ssh-ed25519 AAAA...\")", err)
	}
	return func(hostname string, _ net.Addr, got ssh.PublicKey) error {
		if bytes.Equal(got.Marshal(), want.Marshal()) {
			return nil
		}
		return fmt.Errorf("host key mismatch for %s: the server presented %s %s, but connection.hostKey pins %s %s; "+
			"if the server was rebuilt on purpose, update the pinned key (ssh-keyscan), otherwise do not deploy",
			hostname, got.Type(), ssh.FingerprintSHA256(got), want.Type(), ssh.FingerprintSHA256(want))
	}, nil
}

// parseHostKey accepts an authorized_keys line ("ssh-ed25519 AAAA... comment")
// or a known_hosts line ("host ssh-ed25519 AAAA...").
func parseHostKey(s string) (ssh.PublicKey, error) {
	line := []byte(strings.TrimSpace(s))
	if k, _, _, _, err := ssh.ParseAuthorizedKey(line); err == nil {
		return k, nil
	}
	_, _, k, _, _, err := ssh.ParseKnownHosts(line)
	if err != nil {
		return nil, errors.New("not a public key")
	}
	return k, nil
}

func (c connection) clientConfig() (*ssh.ClientConfig, error) {
	var auth []ssh.AuthMethod
	if c.PrivateKey != "" {
		var signer ssh.Signer
		var err error
		if c.PrivateKeyPassword != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(c.PrivateKey), []byte(c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(c.PrivateKey))
		}
		if err != nil {
			// Never echo the key itself.
			return nil, fmt.Errorf("connection.privateKey could not be parsed: %v", err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if c.Password != "" {
		auth = append(auth, ssh.Password(c.Password))
	}
	if len(auth) == 0 {
		return nil, errors.New("connection: set privateKey or password")
	}
	hk, err := c.hostKeyCallback()
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(c.PerDialTimeout) * time.Second
	return &ssh.ClientConfig{User: c.User, Auth: auth, HostKeyCallback: hk, Timeout: timeout}, nil
}

// dial retries transient dial errors up to DialErrorLimit times (the official default is 10),
// but fails at once on authentication or host key errors, which retrying cannot fix.
func (c connection) dial(ctx context.Context) (*ssh.Client, error) {
	cfg, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	limit := c.DialErrorLimit
	if limit <= 0 {
		limit = 1
	}
	var last error
	for attempt := 1; attempt <= limit; attempt++ {
		client, err := ssh.Dial("tcp", c.address(), cfg)
		if err == nil {
			return client, nil
		}
		last = err
		msg := err.Error()
		if strings.Contains(msg, "host key mismatch") || strings.Contains(msg, "unable to authenticate") {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("ssh %s@%s: %w", c.User, c.address(), last)
}

// runResult is what a remote command printed.
type runResult struct {
	Stdout string
	Stderr string
}

// lineLogger forwards each complete line to log, so long scripts show progress as they go.
type lineLogger struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	all  bytes.Buffer
	emit func(string)
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	if l.emit == nil {
		return len(p), nil
	}
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.Reset()
			l.buf.WriteString(line)
			break
		}
		l.emit(strings.TrimRight(line, "\r\n"))
	}
	return len(p), nil
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.emit != nil && l.buf.Len() > 0 {
		l.emit(l.buf.String())
		l.buf.Reset()
	}
}

// run executes cmd in one SSH session, with stdin and env, streaming lines to the log callbacks.
// env must reach the command (an error if the server refuses it); implicitEnv is best effort
// (PULUMI_COMMAND_STDOUT/STDERR, which most servers' AcceptEnv does not list).
func run(ctx context.Context, conn connection, cmd, stdin string, env, implicitEnv map[string]string,
	logOut, logErr func(string),
) (runResult, error) {
	client, err := conn.dial(ctx)
	if err != nil {
		return runResult{}, err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return runResult{}, fmt.Errorf("ssh session: %w", err)
	}
	defer session.Close()
	for k, v := range implicitEnv {
		_ = session.Setenv(k, v)
	}
	for k, v := range env {
		if err := session.Setenv(k, v); err != nil {
			return runResult{}, fmt.Errorf("environment %s: the SSH server refused it (it must be listed in the "+
				"server's AcceptEnv); pass it on stdin or in the command instead", k)
		}
	}
	out := &lineLogger{emit: logOut}
	errw := &lineLogger{emit: logErr}
	session.Stdout = out
	session.Stderr = errw
	if stdin != "" {
		session.Stdin = strings.NewReader(stdin)
	}
	done := make(chan error, 1)
	go func() { done <- session.Run(cmd) }()
	select {
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGTERM)
		client.Close()
		return runResult{}, ctx.Err()
	case err = <-done:
	}
	out.flush()
	errw.flush()
	res := runResult{
		Stdout: strings.TrimSuffix(out.all.String(), "\n"),
		Stderr: strings.TrimSuffix(errw.all.String(), "\n"),
	}
	if err != nil {
		var exit *ssh.ExitError
		if errors.As(err, &exit) {
			return res, fmt.Errorf("remote command exited with status %d\nstderr (tail):\n%s",
				exit.ExitStatus(), tail(res.Stderr, 30))
		}
		return res, fmt.Errorf("remote command failed: %w (the SSH connection may have been cut)", err)
	}
	return res, nil
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// copyFile uploads a local file to remotePath over SFTP, through a temporary name and a rename,
// so a cut connection never leaves a half-written file under the final name.
func copyFile(ctx context.Context, conn connection, localPath, remotePath string) error {
	client, err := conn.dial(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	sc, err := sftp.NewClient(client)
	if err != nil {
		return fmt.Errorf("sftp: %w (is the SFTP subsystem enabled on the server?)", err)
	}
	defer sc.Close()
	src, err := os.Open(localPath)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer src.Close()
	if err := sc.MkdirAll(path.Dir(remotePath)); err != nil {
		return fmt.Errorf("sftp mkdir %s: %w", path.Dir(remotePath), err)
	}
	tmp := remotePath + ".part"
	dst, err := sc.Create(tmp)
	if err != nil {
		return fmt.Errorf("sftp create %s: %w", tmp, err)
	}
	if _, err := io.Copy(dst, bufio.NewReaderSize(src, 1<<20)); err != nil {
		dst.Close()
		_ = sc.Remove(tmp)
		return fmt.Errorf("sftp upload %s: %w", remotePath, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("sftp close %s: %w", tmp, err)
	}
	if err := sc.PosixRename(tmp, remotePath); err != nil {
		return fmt.Errorf("sftp rename %s: %w", remotePath, err)
	}
	return nil
}
