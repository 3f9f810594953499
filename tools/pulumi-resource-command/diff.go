package main

// Diff, as the official provider does it: neither resource implements its own Diff, so
// pulumi-go-provider v1.3.0's default applies (infer/resource.go, diff): the old inputs are
// compared with the new ones property by property, every change is an update except a change
// of an input tagged replaceOnChanges (triggers) as a whole, and the response lists the changed
// paths (provider.go, DiffResponse.rpc). The replacement for a changed trigger element comes
// from the engine: the SDK sets replaceOnChanges ["triggers[*]"] on both resources.

import (
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// diffInputs computes the official Diff. oldInputs are the engine's old inputs (or, from an
// engine that does not send them, the state's values of the input properties), news the
// checked new inputs, state the old outputs.
func diffInputs(oldInputs, news, state resource.PropertyMap, ignoreChanges []string) *pulumirpc.DiffResponse {
	news = news.Copy()
	// An ignored change takes the value from the state (infer/resource.go diff: req.State.GetOk).
	for _, k := range ignoreChanges {
		if v, ok := state[resource.PropertyKey(k)]; ok {
			news[resource.PropertyKey(k)] = v
		}
	}
	for k := range news {
		if k == "version" || strings.HasPrefix(string(k), "__") {
			delete(news, k)
		}
	}
	olds := normalizeMap(oldInputs)
	news = normalizeMap(news)
	sameUnknownSecrets(olds, news)

	objDiff := olds.Diff(news)
	detailed := plugin.NewDetailedDiffFromObjectDiff(objDiff, false)

	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		HasDetailedDiff: true,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
	}
	if objDiff.AnyChanges() {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	diffs, replaces := map[string]bool{}, map[string]bool{}
	for path, d := range detailed {
		kind := d.Kind
		// forceReplace looks the detailed diff's key up among the schema's input properties, so
		// only a change of the whole input (added, removed, or not an array on both sides) counts.
		if replaceOnChanges[path] {
			kind = kind.AsReplace()
		}
		resp.DetailedDiff[path] = &pulumirpc.PropertyDiff{Kind: rpcDiffKind(kind), InputDiff: d.InputDiff}
		head := path
		if pp, err := resource.ParsePropertyPath(path); err == nil && len(pp) > 0 {
			if s, ok := pp[0].(string); ok {
				head = s
			}
		}
		diffs[head] = true
		if kind.IsReplace() {
			replaces[head] = true
		}
	}
	resp.Diffs = sortedKeys(diffs)
	resp.Replaces = sortedKeys(replaces)
	return resp
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func rpcDiffKind(k plugin.DiffKind) pulumirpc.PropertyDiff_Kind {
	switch k {
	case plugin.DiffAdd:
		return pulumirpc.PropertyDiff_ADD
	case plugin.DiffAddReplace:
		return pulumirpc.PropertyDiff_ADD_REPLACE
	case plugin.DiffDelete:
		return pulumirpc.PropertyDiff_DELETE
	case plugin.DiffDeleteReplace:
		return pulumirpc.PropertyDiff_DELETE_REPLACE
	case plugin.DiffUpdateReplace:
		return pulumirpc.PropertyDiff_UPDATE_REPLACE
	default:
		return pulumirpc.PropertyDiff_UPDATE
	}
}

// normalize gives v the shape the official provider diffs: it unmarshals with pulumi
// sdk v3.224.0, whose property conversion (common/resource/property_compatibility.go,
// ToResourcePropertyValue) turns a value that is both secret and unknown into an unknown secret
// Output, and any other unknown into an unknown string.
func normalize(v resource.PropertyValue) resource.PropertyValue {
	inner, secret, unknown := peel(v)
	switch {
	case secret && unknown:
		return resource.NewProperty(resource.Output{Element: resource.NewNullProperty(), Known: false, Secret: true})
	case unknown:
		return unknownValue()
	}
	switch {
	case inner.IsArray():
		arr := make([]resource.PropertyValue, len(inner.ArrayValue()))
		for i, e := range inner.ArrayValue() {
			arr[i] = normalize(e)
		}
		inner = resource.NewProperty(arr)
	case inner.IsObject():
		inner = resource.NewProperty(normalizeMap(inner.ObjectValue()))
	}
	if secret {
		return resource.MakeSecret(inner)
	}
	return inner
}

func normalizeMap(m resource.PropertyMap) resource.PropertyMap {
	out := make(resource.PropertyMap, len(m))
	for k, v := range m {
		out[k] = normalize(v)
	}
	return out
}

// sameUnknownSecrets: the object diff of pulumi sdk v3.224.0 (common/resource/properties_diff.go,
// PropertyMap.diff: "for output properties, however, ignore differences") counts a property
// whose new value is an Output as unchanged, and its HasValue says an unknown Output has no
// value, so such a property is never an addition either. Later SDKs dropped both, so they are
// applied here: the property takes its old value, or is left out when there is none. Arrays
// keep comparing their elements.
func sameUnknownSecrets(olds, news resource.PropertyMap) {
	for k, n := range news {
		o, ok := olds[k]
		switch {
		case n.IsOutput() && ok:
			news[k] = o
		case n.IsOutput():
			delete(news, k)
		case ok:
			sameUnknownSecretsIn(o, n)
		}
	}
}

func sameUnknownSecretsIn(o, n resource.PropertyValue) {
	switch {
	case o.IsObject() && n.IsObject():
		sameUnknownSecrets(o.ObjectValue(), n.ObjectValue())
	case o.IsArray() && n.IsArray():
		oa, na := o.ArrayValue(), n.ArrayValue()
		for i := 0; i < len(oa) && i < len(na); i++ {
			sameUnknownSecretsIn(oa[i], na[i])
		}
	}
}
