package main

// Check, as the official provider does it. The official provider declares its inputs as Go
// structs (provider/pkg/provider/remote/command.go, copy.go, connection.go, proxyConnection.go
// and common/inputs.go in pulumi/pulumi-command v1.2.1) and lets pulumi-go-provider v1.3.0's
// infer package check them: decode into the struct (infer/internal/ende), apply the declared
// defaults (infer/apply_defaults.go), encode back, then mark the fields tagged secret
// (infer/apply_secrets.go). The schema below restates those structs; checkValue reproduces what
// that round trip does to each value, including its handling of values that are both secret
// and unknown.

import (
	"fmt"
	"math"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

type valueKind int

const (
	kindAny    valueKind = iota // Go `any` (a trigger): its contents are not looked into
	kindString                  // string, *string and the Logging enum
	kindBool
	kindNumber // float64
	kindInt    // int: a fraction is dropped when decoded
	kindList
	kindMap
	kindObject
	kindSource // types.AssetOrArchive
)

type valueType struct {
	kind valueKind
	elem *valueType  // kindList, kindMap
	obj  *objectType // kindObject
}

type fieldSpec struct {
	name     string
	typ      *valueType
	required bool
	secret   bool                    // provider:"secret"
	def      *resource.PropertyValue // a.SetDefault
}

type objectType struct {
	goName string // the Go type as the mapper names it in its messages, e.g. remote.CommandInputs
	short  string // the same without its package, e.g. CommandInputs
	fields []fieldSpec
}

func (o *objectType) field(name string) (fieldSpec, bool) {
	for _, f := range o.fields {
		if f.name == name {
			return f, true
		}
	}
	return fieldSpec{}, false
}

var (
	tAny    = &valueType{kind: kindAny}
	tString = &valueType{kind: kindString}
	tBool   = &valueType{kind: kindBool}
	tNumber = &valueType{kind: kindNumber}
	tInt    = &valueType{kind: kindInt}
	tSource = &valueType{kind: kindSource}
)

func def(v resource.PropertyValue) *resource.PropertyValue { return &v }

// connectionBaseFields: connectionBase in connection.go, with the defaults its Annotate sets
// (the same for Connection and ProxyConnection).
func connectionBaseFields() []fieldSpec {
	return []fieldSpec{
		{name: "user", typ: tString, def: def(resource.NewProperty("root"))},
		{name: "password", typ: tString, secret: true},
		{name: "host", typ: tString, required: true},
		{name: "port", typ: tNumber, def: def(resource.NewProperty(22.0))},
		{name: "privateKey", typ: tString, secret: true},
		{name: "privateKeyPassword", typ: tString, secret: true},
		{name: "agentSocketPath", typ: tString},
		{name: "dialErrorLimit", typ: tInt, def: def(resource.NewProperty(10.0))},
		{name: "perDialTimeout", typ: tInt, def: def(resource.NewProperty(15.0))},
		{name: "hostKey", typ: tString},
	}
}

var (
	proxyType = &objectType{goName: "remote.ProxyConnection", short: "ProxyConnection", fields: connectionBaseFields()}

	connectionType = &objectType{goName: "remote.Connection", short: "Connection",
		fields: append(connectionBaseFields(), fieldSpec{name: "proxy", typ: &valueType{kind: kindObject, obj: proxyType}})}

	tConnection = &valueType{kind: kindObject, obj: connectionType}
	tTriggers   = &valueType{kind: kindList, elem: tAny}

	commandInputs = &objectType{goName: "remote.CommandInputs", short: "CommandInputs", fields: []fieldSpec{
		{name: "triggers", typ: tTriggers},
		{name: "create", typ: tString},
		{name: "update", typ: tString},
		{name: "delete", typ: tString},
		{name: "stdin", typ: tString},
		{name: "logging", typ: tString},
		{name: "connection", typ: tConnection, required: true, secret: true},
		{name: "environment", typ: &valueType{kind: kindMap, elem: tString}},
		{name: "addPreviousOutputInEnv", typ: tBool},
	}}

	copyInputs = &objectType{goName: "remote.CopyToRemoteInputs", short: "CopyToRemoteInputs", fields: []fieldSpec{
		{name: "connection", typ: tConnection, required: true, secret: true},
		{name: "triggers", typ: tTriggers},
		{name: "source", typ: tSource, required: true},
		{name: "remotePath", typ: tString, required: true},
	}}
)

// replaceOnChanges holds the inputs tagged provider:"replaceOnChanges" (common/inputs.go, copy.go).
var replaceOnChanges = map[string]bool{"triggers": true}

func inputsOf(typ string) *objectType {
	switch typ {
	case typeCommand:
		return commandInputs
	case typeCopy:
		return copyInputs
	}
	return nil
}

// peel strips the secret, unknown and output wrappers off v and says which it had.
func peel(v resource.PropertyValue) (inner resource.PropertyValue, secret, unknown bool) {
	for {
		switch {
		case v.IsSecret():
			secret = true
			v = v.SecretValue().Element
		case v.IsComputed():
			unknown = true
			v = v.Input().Element
		case v.IsOutput():
			o := v.OutputValue()
			secret = secret || o.Secret
			unknown = unknown || !o.Known
			v = o.Element
		default:
			return v, secret, unknown
		}
	}
}

func unknownValue() resource.PropertyValue {
	return resource.MakeComputed(resource.NewProperty(""))
}

// zeroOf is what a value of type t decodes to when the official Check has no value for it: the
// ende decoder aligns a missing (unknown) value to its Go type's zero, and a struct gets its
// required fields (recursively) plus its declared defaults. A Go `any` has no zero but nil.
func zeroOf(t *valueType) resource.PropertyValue {
	switch t.kind {
	case kindString:
		return resource.NewProperty("")
	case kindBool:
		return resource.NewProperty(false)
	case kindNumber, kindInt:
		return resource.NewProperty(0.0)
	case kindList:
		return resource.NewProperty([]resource.PropertyValue{})
	case kindMap:
		return resource.NewProperty(resource.PropertyMap{})
	case kindObject:
		m := resource.PropertyMap{}
		for _, f := range t.obj.fields {
			switch {
			case f.required:
				m[resource.PropertyKey(f.name)] = zeroOf(f.typ)
			case f.def != nil:
				m[resource.PropertyKey(f.name)] = *f.def
			}
		}
		return resource.NewProperty(m)
	case kindSource:
		return resource.NewProperty(resource.PropertyMap{}) // an AssetOrArchive with neither set
	default:
		return resource.NewNullProperty()
	}
}

// checkValue is the official Check's round trip for one value of type t.
//
// A value that is both secret and unknown comes back as a *known* secret holding the zero of
// its type: the decoder aligns the unknown to the zero and records "secret, unknown" for the
// path; the encoder re-applies both; then applySecrets (infer/apply_secrets.go, walk) unwraps
// the secret and the unknown, and its two deferred re-wraps run last-in first-out on the
// unwrapped value, so the secret wrap replaces the unknown one. For a trigger (a Go `any`) that
// zero is nil, so the result is a secret with no value, which the plugin marshals as a secret
// without its "value" field; the engine's property unmarshaller (sdk/go/propertyrpc,
// unmarshalStructValue in pulumi/pulumi) refuses it: "triggers[2]: malformed secret: missing value".
//
// at names the field that holds v, for the failures of a nested struct.
func checkValue(t *valueType, v resource.PropertyValue, at fieldRef, fails *[]*pulumirpc.CheckFailure) resource.PropertyValue {
	inner, secret, unknown := peel(v)
	switch {
	case secret && unknown:
		return resource.MakeSecret(zeroOf(t))
	case unknown:
		return unknownValue()
	}
	out := checkKnown(t, inner, at, fails)
	if secret {
		out = resource.MakeSecret(out)
	}
	return out
}

// fieldRef is a field of a struct: CommandInputs.connection.
type fieldRef struct{ parent, key string }

func checkKnown(t *valueType, v resource.PropertyValue, at fieldRef, fails *[]*pulumirpc.CheckFailure) resource.PropertyValue {
	switch t.kind {
	case kindInt:
		if v.IsNumber() {
			return resource.NewProperty(math.Trunc(v.NumberValue()))
		}
	case kindList:
		if v.IsArray() {
			arr := make([]resource.PropertyValue, len(v.ArrayValue()))
			for i, e := range v.ArrayValue() {
				arr[i] = checkValue(t.elem, e, at, fails)
			}
			return resource.NewProperty(arr)
		}
	case kindMap:
		if v.IsObject() {
			m := resource.PropertyMap{}
			for k, e := range v.ObjectValue() {
				m[k] = checkValue(t.elem, e, at, fails)
			}
			return resource.NewProperty(m)
		}
	case kindObject:
		if v.IsObject() {
			var inner []*pulumirpc.CheckFailure
			m := checkObject(t.obj, v.ObjectValue(), &inner)
			if len(inner) > 0 {
				// The mapper reports a nested struct's failures as one failure of the field that
				// holds it (mapper_decode.go adjustValueForAssignment, errors.go mappingError.Error).
				msg := fmt.Sprintf("An error occurred decoding '%s.%s': %d failures decoding:", at.parent, at.key, len(inner))
				for _, f := range inner {
					msg += fmt.Sprintf("\n\t%v: %v", f.Property, f.Reason)
				}
				*fails = append(*fails, &pulumirpc.CheckFailure{Property: at.key, Reason: msg})
			}
			return resource.NewProperty(m)
		}
	}
	return v
}

// checkObject decodes m as an instance of o: it drops nulls, reports missing required and
// unrecognized fields as the mapper does (sdk/go/common/util/mapper, mapper_decode.go), applies
// defaults, and marks the secret fields.
func checkObject(o *objectType, m resource.PropertyMap, fails *[]*pulumirpc.CheckFailure) resource.PropertyMap {
	out := resource.PropertyMap{}
	for _, f := range o.fields {
		key := resource.PropertyKey(f.name)
		v, ok := m[key]
		if !ok || v.IsNull() {
			if f.required {
				*fails = append(*fails, &pulumirpc.CheckFailure{Property: f.name,
					Reason: fmt.Sprintf("Missing required field '%s' on '%s'", f.name, o.goName)})
			} else if f.def != nil {
				out[key] = *f.def
			}
			continue
		}
		v = checkValue(f.typ, v, fieldRef{parent: o.short, key: f.name}, fails)
		if f.secret && !v.IsSecret() {
			v = resource.MakeSecret(v)
		}
		out[key] = v
	}
	var unknownKeys []string
	for k := range m {
		if _, ok := o.field(string(k)); !ok {
			unknownKeys = append(unknownKeys, string(k))
		}
	}
	sort.Strings(unknownKeys)
	for _, k := range unknownKeys {
		*fails = append(*fails, &pulumirpc.CheckFailure{Property: k,
			Reason: fmt.Sprintf("Unrecognized field '%s' on '%s'", k, o.goName)})
	}
	return out
}

// checkInputs is Check for one resource type: the checked inputs and the failures.
func checkInputs(typ string, news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	o := inputsOf(typ)
	var fails []*pulumirpc.CheckFailure
	out := checkObject(o, news, &fails)
	if typ == typeCopy {
		fails = append(fails, checkSource(out["source"])...)
	}
	if len(fails) > 0 {
		return news, fails
	}
	return out, nil
}

// checkSource is CopyToRemote's own Check (copyController.go:72): exactly one of an asset or an
// archive, an asset from a path or a text, an archive from a path.
func checkSource(v resource.PropertyValue) []*pulumirpc.CheckFailure {
	src, _, _ := peel(v)
	fail := func(prop, reason string) []*pulumirpc.CheckFailure {
		return []*pulumirpc.CheckFailure{{Property: prop, Reason: reason}}
	}
	switch {
	case src.IsAsset():
		if a := src.AssetValue(); !a.IsPath() && !a.IsText() {
			return fail("asset", "asset must be a path-based file asset or a text asset")
		}
	case src.IsArchive():
		if !src.ArchiveValue().IsPath() {
			return fail("archive", "archive must be a path to a file or directory")
		}
	default:
		return fail("asset", "either asset or archive must be set")
	}
	return nil
}
