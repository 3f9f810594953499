// pulumi-resource-command: a build of the two resources this project uses from the
// `command` package (command:remote:Command and command:remote:CopyToRemote), wire-compatible
// with the @pulumi/command 1.2.1 SDK, for machines that cannot fetch the official plugin.
//
// Why it exists: the official provider's Go module (github.com/pulumi/pulumi-command/provider)
// is untagged and its pseudo-versions are refused by the module proxy these machines reach, so
// it cannot be built here. On a machine with internet, `npm run setup` installs the official
// plugin instead (see scripts/setup.sh).
//
// It behaves as the official plugin v1.2.1 does wherever a program or the CLI can tell: Check,
// Diff, the preview and the outputs follow pulumi-go-provider v1.3.0's infer package, which the
// official provider is built on (check.go, diff.go); commands, uploads, dial retries, log
// messages and error texts follow provider/pkg/provider/remote in pulumi/pulumi-command v1.2.1
// (ssh.go, copy.go). Each behaviour has a test naming the official source it mirrors.
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Version is stamped at build time (-X main.Version=1.2.1) to the SDK's plugin version.
var Version = "1.2.1"

const (
	typeCommand = "command:remote:Command"
	typeCopy    = "command:remote:CopyToRemote"
)

// hostLogger is the part of the engine's host client the provider logs through.
type hostLogger interface {
	Log(ctx context.Context, sev diag.Severity, urn resource.URN, msg string) error
	LogStatus(ctx context.Context, sev diag.Severity, urn resource.URN, msg string) error
}

// opLog logs for one resource operation, as pulumi-go-provider's Logger does (logging.go):
// log is a diagnostic, status a status message (shown while it is the latest, not kept).
type opLog struct {
	ctx  context.Context
	host hostLogger
	urn  resource.URN
}

func (l opLog) log(sev diag.Severity, msg string) {
	if l.host != nil {
		_ = l.host.Log(l.ctx, sev, l.urn, msg)
	}
}

func (l opLog) status(msg string) {
	if l.host != nil {
		_ = l.host.LogStatus(l.ctx, diag.Info, l.urn, msg)
	}
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	host hostLogger

	mu                sync.Mutex
	supportsOldInputs bool
	cancels           map[*context.CancelFunc]struct{}
}

func newServer(host hostLogger) *server {
	return &server{host: host, cancels: map[*context.CancelFunc]struct{}{}}
}

func main() {
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		if host == nil {
			return newServer(nil), nil
		}
		return newServer(host), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

var marshalOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true, KeepResources: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, marshalOpts)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, marshalOpts)
}

func resourceType(urn string) string { return string(resource.URN(urn).Type()) }

// opCtx is the cancel middleware of pulumi-go-provider (middleware/cancel/cancel.go): each
// operation's context ends on Cancel, and after the operation's timeout when it has one.
func (s *server) opCtx(ctx context.Context, timeout float64) (context.Context, func()) {
	var cancel context.CancelFunc
	if timeout == 0 {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, time.Second*time.Duration(timeout))
	}
	s.mu.Lock()
	s.cancels[&cancel] = struct{}{}
	s.mu.Unlock()
	return ctx, func() {
		s.mu.Lock()
		delete(s.cancels, &cancel)
		s.mu.Unlock()
		cancel()
	}
}

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

func (s *server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: fmt.Sprintf(`{"name":"command","version":%q}`, Version)}, nil
}

// Handshake, CheckConfig and DiffConfig are left unimplemented, as in the official provider
// (pulumi-go-provider v1.3.0 has no Handshake; without a config type CheckConfig and DiffConfig
// answer Unimplemented), so the engine takes its fallbacks for them.

// Configure answers as pulumi-go-provider does (provider.go Configure) and notes whether the
// engine sends old inputs, which Diff then compares against.
func (s *server) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	s.mu.Lock()
	s.supportsOldInputs = req.GetSendsOldInputs() && req.GetSendsOldInputsToDelete()
	s.mu.Unlock()
	return &pulumirpc.ConfigureResponse{
		AcceptSecrets: true, SupportsPreview: true, AcceptResources: true, AcceptOutputs: true,
	}, nil
}

func (s *server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.cancels {
		(*c)()
		delete(s.cancels, c)
	}
	return &emptypb.Empty{}, nil
}

func checkType(urn string) (string, error) {
	typ := resourceType(urn)
	if inputsOf(typ) == nil {
		return "", fmt.Errorf("unsupported resource type %s: this build implements %s and %s", typ, typeCommand, typeCopy)
	}
	return typ, nil
}

func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	typ, err := checkType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	checked, failures := checkInputs(typ, news)
	inputs, err := marshal(checked)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	typ, err := checkType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	supportsOldInputs := s.supportsOldInputs
	s.mu.Unlock()
	var oldInputs resource.PropertyMap
	if supportsOldInputs {
		if oldInputs, err = unmarshal(req.GetOldInputs()); err != nil {
			return nil, err
		}
	} else {
		// Old inputs fabricated from the state's values of the input properties (infer/resource.go diff).
		oldInputs = resource.PropertyMap{}
		for _, f := range inputsOf(typ).fields {
			if v, ok := state[resource.PropertyKey(f.name)]; ok {
				oldInputs[resource.PropertyKey(f.name)] = v
			}
		}
	}
	return diffInputs(oldInputs, news, state, req.GetIgnoreChanges()), nil
}

func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	typ, err := checkType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	ctx, end := s.opCtx(ctx, req.GetTimeout())
	defer end()
	lg := opLog{ctx: ctx, host: s.host, urn: resource.URN(req.GetUrn())}
	id, outs, err := createResource(ctx, lg, typ, props, req.GetPreview())
	if err != nil {
		return nil, err
	}
	m, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: m}, nil
}

// createResource is Command.Create (commandController.go:31) and CopyToRemote.Create
// (copyController.go:118). A Command's id is its name and 8 hex digits (also at preview), a
// CopyToRemote's 8 hex digits; at preview the outputs are the inputs, plus unknown
// stdout and stderr for a Command (infer/resource.go markComputed).
func createResource(ctx context.Context, lg opLog, typ string, props resource.PropertyMap, preview bool,
) (string, resource.PropertyMap, error) {
	outs := props.Copy()
	if typ == typeCopy {
		if preview {
			return "", outs, nil
		}
		if err := upload(ctx, lg, props); err != nil {
			return "", nil, err
		}
		id, err := resource.NewUniqueHex("", 8, 0)
		return id, outs, err
	}
	id, err := resource.NewUniqueHex(lg.urn.Name(), 8, 0)
	if err != nil {
		return "", nil, err
	}
	if preview {
		outs["stdout"], outs["stderr"] = unknownValue(), unknownValue()
		return id, outs, nil
	}
	var stdout, stderr string
	if create := strp(props, "create"); create != nil {
		if stdout, stderr, err = runIn(ctx, lg, props, *create, "", ""); err != nil {
			return "", nil, err
		}
	}
	outs["stdout"], outs["stderr"] = resource.NewProperty(stdout), resource.NewProperty(stderr)
	return id, outs, nil
}

// runIn runs cmd with the inputs in m; stdout and stderr are the previous run's outputs.
func runIn(ctx context.Context, lg opLog, m resource.PropertyMap, cmd, stdout, stderr string) (string, string, error) {
	conn, err := parseConnection(m["connection"])
	if err != nil {
		return "", "", err
	}
	r := commandRun{
		cmd: cmd, environment: strMap(m, "environment"), addPreviousOutputInEnv: boolp(m, "addPreviousOutputInEnv"),
		stdout: stdout, stderr: stderr, stdin: strp(m, "stdin"), logging: strp(m, "logging"),
	}
	return r.run(ctx, lg, conn)
}

func (s *server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	typ, err := checkType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	for _, k := range req.GetIgnoreChanges() { // infer/resource.go Update
		if v, ok := state[resource.PropertyKey(k)]; ok {
			news[resource.PropertyKey(k)] = v
		}
	}
	ctx, end := s.opCtx(ctx, req.GetTimeout())
	defer end()
	lg := opLog{ctx: ctx, host: s.host, urn: resource.URN(req.GetUrn())}
	outs, err := updateResource(ctx, lg, typ, state, news, req.GetPreview())
	if err != nil {
		return nil, err
	}
	m, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: m}, nil
}

// updateResource is Command.Update (commandController.go:63): `update` if set, else `create`,
// else nothing (the previous stdout and stderr stay); and CopyToRemote.Update
// (copyController.go:137): an upload only when the source's hash or remotePath changed.
func updateResource(ctx context.Context, lg opLog, typ string, state, news resource.PropertyMap, preview bool,
) (resource.PropertyMap, error) {
	outs := news.Copy()
	if typ == typeCopy {
		if preview {
			return outs, nil
		}
		if sourceHash(news) != sourceHash(state) || str(news, "remotePath") != str(state, "remotePath") {
			if err := upload(ctx, lg, news); err != nil {
				return nil, err
			}
		}
		return outs, nil
	}
	stdout, stderr := str(state, "stdout"), str(state, "stderr")
	if preview {
		outs["stdout"], outs["stderr"] = resource.NewProperty(stdout), resource.NewProperty(stderr)
		if previewUnknown(news, state) {
			outs["stdout"], outs["stderr"] = unknownValue(), unknownValue()
		}
		return outs, nil
	}
	cmd := strp(news, "update")
	if cmd == nil {
		cmd = strp(news, "create")
	}
	if cmd != nil {
		var err error
		if stdout, stderr, err = runIn(ctx, lg, news, *cmd, stdout, stderr); err != nil {
			return nil, err
		}
	}
	outs["stdout"], outs["stderr"] = resource.NewProperty(stdout), resource.NewProperty(stderr)
	return outs, nil
}

// previewUnknown: at an update's preview the outputs that are not inputs become unknown when an
// input is unknown or differs from the state's value of it; an input the state does not hold
// does not count (infer/resource.go markComputed, the default "every output depends on every
// input" wiring of ensureDefaultComputed).
func previewUnknown(news, state resource.PropertyMap) bool {
	for _, f := range commandInputs.fields {
		k := resource.PropertyKey(f.name)
		in := news[k]
		if _, _, unknown := peel(in); unknown {
			return true
		}
		if old, ok := state[k]; ok && !foldedEquals(in, old) {
			return true
		}
	}
	return false
}

// foldedEquals is putil.DeepEquals (pulumi-go-provider internal/putil/putil.go:116): secret
// and unknown wrappers are compared as flags, objects must have the same keys.
func foldedEquals(a, b resource.PropertyValue) bool {
	a, as, au := peel(a)
	b, bs, bu := peel(b)
	if as != bs || au != bu {
		return false
	}
	switch {
	case a.IsArray() && b.IsArray():
		x, y := a.ArrayValue(), b.ArrayValue()
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !foldedEquals(x[i], y[i]) {
				return false
			}
		}
		return true
	case a.IsObject() && b.IsObject():
		x, y := a.ObjectValue(), b.ObjectValue()
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !foldedEquals(v, w) {
				return false
			}
		}
		return true
	case a.IsNull() && b.IsNull():
		return true
	case a.IsBool() && b.IsBool():
		return a.BoolValue() == b.BoolValue()
	case a.IsNumber() && b.IsNumber():
		return a.NumberValue() == b.NumberValue()
	case a.IsString() && b.IsString():
		return a.StringValue() == b.StringValue()
	case a.IsResourceReference() && b.IsResourceReference():
		return a.DeepEquals(b)
	case a.IsAsset() && b.IsAsset():
		return a.AssetValue().Equals(b.AssetValue())
	case a.IsArchive() && b.IsArchive():
		return a.ArchiveValue().Equals(b.ArchiveValue())
	}
	return false
}

func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

// Delete runs a Command's `delete` (commandController.go:86), with the state's environment
// and outputs; an uploaded file is left in place (CopyToRemote has no Delete).
func (s *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if resourceType(req.GetUrn()) != typeCommand {
		return &emptypb.Empty{}, nil
	}
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	del := strp(props, "delete")
	if del == nil {
		return &emptypb.Empty{}, nil
	}
	ctx, end := s.opCtx(ctx, req.GetTimeout())
	defer end()
	lg := opLog{ctx: ctx, host: s.host, urn: resource.URN(req.GetUrn())}
	_, _, err = runIn(ctx, lg, props, *del, str(props, "stdout"), str(props, "stderr"))
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// strp is a string input as the official provider decodes it: nil when unset.
func strp(m resource.PropertyMap, k string) *string {
	if v, _, _ := peel(m[resource.PropertyKey(k)]); v.IsString() {
		s := v.StringValue()
		return &s
	}
	return nil
}

func str(m resource.PropertyMap, k string) string {
	if p := strp(m, k); p != nil {
		return *p
	}
	return ""
}

func boolp(m resource.PropertyMap, k string) *bool {
	if v, _, _ := peel(m[resource.PropertyKey(k)]); v.IsBool() {
		b := v.BoolValue()
		return &b
	}
	return nil
}

func strMap(m resource.PropertyMap, k string) map[string]string {
	v, _, _ := peel(m[resource.PropertyKey(k)])
	if !v.IsObject() {
		return nil
	}
	out := map[string]string{}
	for kk, vv := range v.ObjectValue() {
		if s, _, _ := peel(vv); s.IsString() {
			out[string(kk)] = s.StringValue()
		}
	}
	return out
}
