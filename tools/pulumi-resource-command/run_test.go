package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/archive"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/asset"
)

func commandProps(s *testServer, extra map[string]any) resource.PropertyMap {
	m := resource.PropertyMap{"connection": s.connection(nil)}
	for k, v := range extra {
		m[resource.PropertyKey(k)] = resource.NewPropertyValue(v)
	}
	return m
}

func persistent(entries []logEntry) []logEntry {
	var out []logEntry
	for _, e := range entries {
		if !e.ephemeral {
			out = append(out, e)
		}
	}
	return out
}

func statuses(entries []logEntry) []string {
	var out []string
	for _, e := range entries {
		if e.ephemeral {
			if e.sev != diag.Info {
				panic("status not at Info")
			}
			out = append(out, e.msg)
		}
	}
	return out
}

// Mirrors commandOutputs.go:77-107 in pulumi/pulumi-command v1.2.1: the logged streams go
// line by line to util.LogOutput (util/util.go:32-41, InfoStatus, i.e. pulumi-go-provider v1.3.0
// logging.go:56 -> hostSink.LogStatus at :106, an ephemeral LogRequest), never to diagnostics; the
// outputs lose one trailing newline (commandOutputs.go:104-105).
func TestCreateOutputsAndStatusLines(t *testing.T) {
	s := startServer(t)
	h := &fakeHost{}
	_, outs, err := createResource(context.Background(), testLog(h), typeCommand,
		commandProps(s, map[string]any{"create": `printf 'one\r\ntwo\n\n'; sleep 0.2; printf 'err\n' >&2`}), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := outs["stdout"].StringValue(); got != "one\r\ntwo\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := outs["stderr"].StringValue(); got != "err" {
		t.Errorf("stderr = %q", got)
	}
	if outs["stdout"].IsSecret() {
		t.Errorf("stdout is secret; the official provider does not mark it (infer/resource.go ensureDefaultSecrets)")
	}
	if got := strings.Join(statuses(h.all()), "|"); got != "one|two||err" {
		t.Errorf("status lines %q", got)
	}
	if p := persistent(h.all()); len(p) != 0 {
		t.Errorf("diagnostics logged: %v", p)
	}
}

// logging.go:27-32: stdout for "stdout" and "stdoutAndStderr" or unset, stderr for "stderr"
// and "stdoutAndStderr" or unset, nothing otherwise ("none", or any other value).
func TestLoggingModes(t *testing.T) {
	s := startServer(t)
	for mode, want := range map[string]string{"stdout": "o", "stderr": "e", "stdoutAndStderr": "o|e", "none": "", "bogus": ""} {
		h := &fakeHost{}
		_, _, err := createResource(context.Background(), testLog(h), typeCommand,
			commandProps(s, map[string]any{"create": "echo o; sleep 0.2; echo e >&2", "logging": mode}), false)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(statuses(h.all()), "|"); got != want {
			t.Errorf("logging %s: %q, want %q", mode, got, want)
		}
	}
}

// commandOutputs.go:100-101: "%w: running %q:\n%s" with the ssh ExitError and stdout and
// stderr together; commandController.go:56-59 and infer/resource.go Create return it as is.
func TestFailedCommandError(t *testing.T) {
	s := startServer(t)
	cmd := "echo out; sleep 0.2; echo err >&2; exit 3"
	_, _, err := createResource(context.Background(), testLog(&fakeHost{}), typeCommand,
		commandProps(s, map[string]any{"create": cmd}), false)
	want := "Process exited with status 3: running \"" + strings.ReplaceAll(cmd, `"`, `\"`) + "\":\nout\nerr\n"
	if err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

// commandOutputs.go:42-71 and :110-125: environment variables first, a refused one is an
// error (logged as an error diagnostic); PULUMI_COMMAND_STDOUT/STDERR (util/util.go:29-30) from
// the previous outputs when addPreviousOutputInEnv is unset or true and they are not empty, a
// refused one a warning; stdin only when not empty (commandOutputs.go:73).
func TestEnvironmentPreviousOutputsAndStdin(t *testing.T) {
	s := startServer(t, "FOO", "PULUMI_COMMAND_STDOUT")
	h := &fakeHost{}
	props := commandProps(s, map[string]any{
		"create": "true", "update": `echo "$FOO|$PULUMI_COMMAND_STDOUT|$PULUMI_COMMAND_STDERR|$(cat)"`,
		"environment": map[string]any{"FOO": "bar"}, "stdin": "in",
	})
	state := props.Copy()
	state["stdout"], state["stderr"] = resource.NewProperty("prev"), resource.NewProperty("preverr")
	outs, err := updateResource(context.Background(), testLog(h), typeCommand, state, props, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := outs["stdout"].StringValue(); got != "bar|prev||in" {
		t.Errorf("stdout = %q", got)
	}
	warn := persistent(h.all())
	if len(warn) != 1 || warn[0].sev != diag.Warning || warn[0].msg != "Unable to set 'PULUMI_COMMAND_STDERR'. "+
		"This only works if your SSH server is configured to accept\n\tthese variables via AcceptEnv. Alternatively, "+
		"if a Bash-like shell runs the command on the remote host, you could\n\tprefix the command itself with the "+
		"variables in the form 'VAR=value command'" {
		t.Errorf("diagnostics: %#v", warn)
	}

	// addPreviousOutputInEnv false: not set; empty stdin: none sent (cat sees EOF at once).
	h = &fakeHost{}
	props["addPreviousOutputInEnv"] = resource.NewProperty(false)
	props["stdin"] = resource.NewProperty("")
	outs, err = updateResource(context.Background(), testLog(h), typeCommand, state, props, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := outs["stdout"].StringValue(); got != "bar|||" || len(persistent(h.all())) != 0 {
		t.Errorf("stdout = %q, logs %v", got, h.all())
	}

	h = &fakeHost{}
	props["environment"] = resource.NewProperty(resource.PropertyMap{"NOPE": resource.NewProperty("x")})
	_, err = updateResource(context.Background(), testLog(h), typeCommand, state, props, false)
	if err == nil || err.Error() != `could not set environment variable "NOPE": ssh: setenv failed` {
		t.Errorf("error %v", err)
	}
	if p := persistent(h.all()); len(p) != 1 || p[0].sev != diag.Error || !strings.HasPrefix(p[0].msg, "Unable to set 'NOPE'.") {
		t.Errorf("diagnostics: %#v", p)
	}
}

// commandController.go:63-83: update runs `update`, else `create`, else nothing and the
// previous stdout/stderr stay; the previous outputs come from the state (BaseOutputs: olds).
func TestUpdateRunsUpdateElseCreateElseKeeps(t *testing.T) {
	s := startServer(t)
	state := commandProps(s, nil)
	state["stdout"], state["stderr"] = resource.NewProperty("old"), resource.NewProperty("olderr")
	for _, c := range []struct {
		inputs map[string]any
		want   string
	}{
		{map[string]any{"create": "echo c", "update": "echo u"}, "u"},
		{map[string]any{"create": "echo c"}, "c"},
		{map[string]any{"update": ""}, ""}, // set, even empty: it runs
		{map[string]any{"delete": "echo d"}, "old"},
	} {
		outs, err := updateResource(context.Background(), testLog(&fakeHost{}), typeCommand, state,
			commandProps(s, c.inputs), false)
		if err != nil {
			t.Fatal(err)
		}
		if got := outs["stdout"].StringValue(); got != c.want {
			t.Errorf("%v: stdout %q, want %q", c.inputs, got, c.want)
		}
	}
}

// Preview: commandController.go:40-46 (a Command's id is its name and 8 hex digits, also at
// preview) and :70-73; copyController.go:124-126 (no id at preview) and :133 (8 hex digits);
// the outputs mirror the inputs, a Command's stdout/stderr unknown at a create's preview and at
// an update's preview when an input changed (infer/resource.go:545-590, markComputed), the old
// ones when only inputs the state lacks are new.
func TestPreviewOutputsAndIDs(t *testing.T) {
	ctx := context.Background()
	props := resource.PropertyMap{"connection": conn("h"), "create": resource.NewProperty("x")}
	id, outs, err := createResource(ctx, testLog(nil), typeCommand, props, true)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^echo[0-9a-f]{8}$`).MatchString(id) {
		t.Errorf("preview id %q", id)
	}
	if !outs["stdout"].IsComputed() || !outs["stderr"].IsComputed() || !outs["create"].DeepEquals(props["create"]) {
		t.Errorf("preview outputs %v", outs)
	}
	id, outs, err = createResource(ctx, opLog{ctx: ctx, urn: copyURN}, typeCopy, props, true)
	if err != nil || id != "" || !outs.DeepEquals(props) {
		t.Errorf("copy preview: %q %v %v", id, outs, err)
	}

	state := props.Copy()
	state["stdout"], state["stderr"] = resource.NewProperty("old"), resource.NewProperty("")
	news := props.Copy()
	news["create"] = resource.NewProperty("y")
	outs, _ = updateResource(ctx, testLog(nil), typeCommand, state, news, true)
	if !outs["stdout"].IsComputed() {
		t.Errorf("changed input: stdout %v", outs["stdout"])
	}
	news = props.Copy()
	news["update"] = resource.NewProperty("z") // not in the state
	outs, _ = updateResource(ctx, testLog(nil), typeCommand, state, news, true)
	if !outs["stdout"].DeepEquals(resource.NewProperty("old")) {
		t.Errorf("new input only: stdout %v", outs["stdout"])
	}

	s := startServer(t)
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	id, _, err = createResource(ctx, opLog{ctx: ctx, urn: copyURN}, typeCopy, resource.PropertyMap{
		"connection": s.connection(nil), "remotePath": resource.NewProperty(filepath.Join(t.TempDir(), "g")),
		"source": resource.NewProperty(&asset.Asset{Sig: asset.AssetSig, Path: src}),
	}, false)
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(id) {
		t.Errorf("copy id %q %v", id, err)
	}
}

// commandController.go:86-92: `delete` runs with the state's environment and outputs
// (PULUMI_COMMAND_STDOUT); nothing runs when it is unset.
func TestDeleteRunsWithState(t *testing.T) {
	s := startServer(t, "PULUMI_COMMAND_STDOUT")
	mark := filepath.Join(t.TempDir(), "deleted")
	props := commandProps(s, map[string]any{"delete": `printf %s "$PULUMI_COMMAND_STDOUT" > ` + mark})
	props["stdout"] = resource.NewProperty("gone")
	st, _ := marshal(props)
	srv := newServer(&fakeHost{})
	if _, err := srv.Delete(context.Background(), deleteReq(st)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(mark); string(b) != "gone" {
		t.Errorf("delete saw %q", b)
	}
	delete(props, "delete")
	st, _ = marshal(props)
	before, _ := s.counts()
	if _, err := srv.Delete(context.Background(), deleteReq(st)); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.counts(); after != before {
		t.Errorf("a Command without delete ran something")
	}
}

// copyController.go:148: an update uploads only when the source's hash (copy.go:77) or
// remotePath changed, so a connection change alone sends nothing.
func TestCopyUpdateUploadsOnlyWhenSourceOrPathChanged(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "dest")
	mk := func(hash, remote string, extra map[string]any) resource.PropertyMap {
		return resource.PropertyMap{
			"connection": s.connection(extra), "remotePath": resource.NewProperty(remote),
			"source": resource.NewProperty(&asset.Asset{Sig: asset.AssetSig, Path: src, Hash: hash}),
		}
	}
	lg := opLog{ctx: context.Background(), urn: copyURN}
	olds := mk("h1", dest, nil)
	if _, err := updateResource(context.Background(), lg, typeCopy, olds, mk("h1", dest, map[string]any{"user": "other"}), false); err != nil {
		t.Fatal(err)
	}
	if _, n := s.counts(); n != 0 {
		t.Fatalf("connection change uploaded")
	}
	if _, err := updateResource(context.Background(), lg, typeCopy, olds, mk("h2", dest, nil), false); err != nil {
		t.Fatal(err)
	}
	if _, err := updateResource(context.Background(), lg, typeCopy, olds, mk("h1", dest+"2", nil), false); err != nil {
		t.Fatal(err)
	}
	if _, n := s.counts(); n != 2 {
		t.Errorf("uploads: %d, want 2", n)
	}
}

// copyController.go:33-62 (text asset) and :203-319 (sftpCopy, copyFile, copyDir): straight to
// the destination, parents created; a file into an existing directory; a directory as
// dest/base, or its contents when the path ends in "/"; a text asset refused for a directory.
func TestUploads(t *testing.T) {
	s := startServer(t)
	local, remote := t.TempDir(), t.TempDir()
	write := func(p, body string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(local, "file.txt"), "file")
	write(filepath.Join(local, "tree", "a.txt"), "a")
	write(filepath.Join(local, "tree", "sub", "b.txt"), "b")
	if err := os.Mkdir(filepath.Join(remote, "existing"), 0o755); err != nil {
		t.Fatal(err)
	}
	fileAsset := func(p string) resource.PropertyValue {
		return resource.NewProperty(&asset.Asset{Sig: asset.AssetSig, Path: p})
	}
	dirArchive := func(p string) resource.PropertyValue {
		return resource.NewProperty(&archive.Archive{Sig: archive.ArchiveSig, Path: p})
	}
	h := &fakeHost{}
	up := func(src resource.PropertyValue, dest string) error {
		return upload(context.Background(), opLog{ctx: context.Background(), host: h, urn: copyURN}, resource.PropertyMap{
			"connection": s.connection(nil), "source": src, "remotePath": resource.NewProperty(dest),
		})
	}
	checks := map[string]string{}
	if err := up(fileAsset(filepath.Join(local, "file.txt")), filepath.Join(remote, "new", "deep", "f.txt")); err != nil {
		t.Fatal(err)
	}
	checks["new/deep/f.txt"] = "file"
	if err := up(fileAsset(filepath.Join(local, "file.txt")), filepath.Join(remote, "existing")); err != nil {
		t.Fatal(err)
	}
	checks["existing/file.txt"] = "file"
	if err := up(resource.NewProperty(&asset.Asset{Sig: asset.AssetSig, Text: "text"}), filepath.Join(remote, "t", "x.txt")); err != nil {
		t.Fatal(err)
	}
	checks["t/x.txt"] = "text"
	if err := up(dirArchive(filepath.Join(local, "tree")), filepath.Join(remote, "d1")); err != nil {
		t.Fatal(err)
	}
	checks["d1/tree/a.txt"], checks["d1/tree/sub/b.txt"] = "a", "b"
	if err := up(dirArchive(filepath.Join(local, "tree")+"/"), filepath.Join(remote, "d2")); err != nil {
		t.Fatal(err)
	}
	checks["d2/a.txt"], checks["d2/sub/b.txt"] = "a", "b"
	for p, want := range checks {
		if b, err := os.ReadFile(filepath.Join(remote, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	var names []string
	_ = filepath.Walk(remote, func(p string, _ os.FileInfo, _ error) error {
		names = append(names, p)
		return nil
	})
	for _, n := range names {
		if strings.Contains(n, ".part") || strings.Contains(n, ".tmp") {
			t.Errorf("temporary name left: %s", n)
		}
	}
	err := up(resource.NewProperty(&asset.Asset{Sig: asset.AssetSig, Text: "x"}), filepath.Join(remote, "existing"))
	want := "remote path " + filepath.Join(remote, "existing") + " is a directory; when using a text asset, remotePath must be a file path"
	if err == nil || err.Error() != want {
		t.Errorf("text into a directory: %v", err)
	}
	// copyController.go:161-166: a debug diagnostic names the upload.
	wantDebug := "Creating file: 127.0.0.1:" + filepath.Join(remote, "new", "deep", "f.txt") + " from local file " + filepath.Join(local, "file.txt")
	if e := h.all(); len(e) == 0 || e[0].sev != diag.Debug || e[0].msg != wantDebug || e[0].ephemeral {
		t.Errorf("first log %#v, want debug %q", e, wantDebug)
	}
	if !reflect.DeepEqual(statuses(h.all()), []string(nil)) {
		t.Errorf("statuses %v", statuses(h.all()))
	}
}
