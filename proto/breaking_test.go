package proto_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	_ "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// lockFile holds the stored-event schemas as last accepted. `make proto-lock` rewrites it,
// and only after this test has passed against the old one.
const lockFile = "events.lock.binpb"

// TestEventSchemasCompatible: stored events are immutable, so their schemas may only grow.
func TestEventSchemasCompatible(t *testing.T) {
	raw, err := os.ReadFile(lockFile)
	if err != nil {
		t.Fatalf("read %s: %v", lockFile, err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		t.Fatalf("decode %s: %v", lockFile, err)
	}
	if len(set.File) == 0 {
		t.Fatalf("%s holds no files", lockFile)
	}
	locked, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatalf("%s: %v", lockFile, err)
	}
	for _, p := range incompatibilities(locked, protoregistry.GlobalFiles) {
		t.Error(p)
	}
}

// TestIncompatibilitiesDetected proves the check above can fail: each change here must be caught.
func TestIncompatibilitiesDetected(t *testing.T) {
	const base = `name: "x.proto" package: "x" syntax: "proto3"
		message_type { name: "Ev"
			field { name: "id" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "id" }
			field { name: "n" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "n" } }
		enum_type { name: "Kind" value { name: "KIND_UNSPECIFIED" number: 0 } value { name: "KIND_A" number: 1 } }`
	cases := []struct {
		name, changed string
		want          string // substring of the problem; "" = compatible
	}{
		{"unchanged", base, ""},
		{"field added", strings.Replace(base, `json_name: "n" }`, `json_name: "n" } field { name: "m" number: 3 type: TYPE_BOOL label: LABEL_OPTIONAL json_name: "m" }`, 1), ""},
		{"field removed", strings.Replace(base, `field { name: "n" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "n" }`, ``, 1), "removed without reserving"},
		{"field removed and reserved", strings.Replace(base, `field { name: "n" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "n" }`, `reserved_range { start: 2 end: 3 } reserved_name: "n"`, 1), ""},
		{"type changed", strings.Replace(base, `TYPE_INT64`, `TYPE_STRING`, 1), "type changed"},
		{"renamed", strings.Replace(base, `name: "n" number: 2`, `name: "count" number: 2`, 1), "renamed"},
		{"renumbered", strings.Replace(base, `number: 2 type: TYPE_INT64`, `number: 5 type: TYPE_INT64`, 1), "removed without reserving"},
		{"made repeated", strings.Replace(base, `TYPE_INT64 label: LABEL_OPTIONAL`, `TYPE_INT64 label: LABEL_REPEATED`, 1), "cardinality"},
		{"message removed", strings.Replace(strings.Replace(base, `message_type { name: "Ev"`, `message_type { name: "Other"`, 1), "", "", 1), "message x.Ev removed"},
		{"enum value removed", strings.Replace(base, ` value { name: "KIND_A" number: 1 }`, ``, 1), "KIND_A = 1 removed"},
	}
	old := files(t, base)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := incompatibilities(old, files(t, c.changed))
			if c.want == "" && len(got) > 0 || c.want != "" && (len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), c.want)) {
				t.Fatalf("problems %q, want one containing %q", got, c.want)
			}
		})
	}
}

func files(t *testing.T, text string) *protoregistry.Files {
	t.Helper()
	var fd descriptorpb.FileDescriptorProto
	if err := prototext.Unmarshal([]byte(text), &fd); err != nil {
		t.Fatal(err)
	}
	f, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{&fd}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// incompatibilities lists every way current would misread data written with locked: nothing
// may disappear unless reserved, and nothing may change number, name, type or cardinality.
func incompatibilities(locked, current *protoregistry.Files) []string {
	var out []string
	report := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	var messages func(protoreflect.MessageDescriptors)
	var enums func(protoreflect.EnumDescriptors)
	messages = func(olds protoreflect.MessageDescriptors) {
		for i := 0; i < olds.Len(); i++ {
			old := olds.Get(i)
			d, _ := current.FindDescriptorByName(old.FullName())
			cur, ok := d.(protoreflect.MessageDescriptor)
			if !ok {
				report("message %s removed: events of this type are stored and must stay readable", old.FullName())
				continue
			}
			for _, p := range fieldChanges(old, cur) {
				report("%s", p)
			}
			messages(old.Messages())
			enums(old.Enums())
		}
	}
	enums = func(olds protoreflect.EnumDescriptors) {
		for i := 0; i < olds.Len(); i++ {
			old := olds.Get(i)
			d, _ := current.FindDescriptorByName(old.FullName())
			cur, ok := d.(protoreflect.EnumDescriptor)
			if !ok {
				report("enum %s removed", old.FullName())
				continue
			}
			for j := 0; j < old.Values().Len(); j++ {
				ov := old.Values().Get(j)
				cv := cur.Values().ByNumber(ov.Number())
				switch {
				case cv == nil && !(cur.ReservedRanges().Has(ov.Number()) && cur.ReservedNames().Has(ov.Name())):
					report("%s: value %s = %d removed without reserving it", old.FullName(), ov.Name(), ov.Number())
				case cv != nil && cv.Name() != ov.Name():
					report("%s: value %d renamed %s -> %s", old.FullName(), ov.Number(), ov.Name(), cv.Name())
				}
			}
		}
	}
	locked.RangeFiles(func(old protoreflect.FileDescriptor) bool {
		cur, err := current.FindFileByPath(old.Path())
		if err != nil {
			report("%s: file removed: %v", old.Path(), err)
			return true
		}
		if cur.Package() != old.Package() {
			report("%s: package changed from %s to %s", old.Path(), old.Package(), cur.Package())
		}
		messages(old.Messages())
		enums(old.Enums())
		return true
	})
	return out
}

func fieldChanges(old, cur protoreflect.MessageDescriptor) []string {
	var out []string
	for j := 0; j < old.Fields().Len(); j++ {
		of := old.Fields().Get(j)
		cf := cur.Fields().ByNumber(of.Number())
		where := fmt.Sprintf("%s.%s", old.FullName(), of.Name())
		switch {
		case cf == nil:
			if !cur.ReservedRanges().Has(of.Number()) || !cur.ReservedNames().Has(of.Name()) {
				out = append(out, fmt.Sprintf("%s: field %d removed without reserving its number and name", where, of.Number()))
			}
		case cf.Name() != of.Name():
			out = append(out, fmt.Sprintf("%s: field %d renamed to %s (breaks the JSON form)", where, of.Number(), cf.Name()))
		case cf.Kind() != of.Kind():
			out = append(out, fmt.Sprintf("%s: type changed %s -> %s", where, of.Kind(), cf.Kind()))
		case cf.Cardinality() != of.Cardinality() || cf.IsMap() != of.IsMap():
			out = append(out, fmt.Sprintf("%s: cardinality changed", where))
		case cf.HasPresence() != of.HasPresence():
			out = append(out, fmt.Sprintf("%s: presence (optional) changed", where))
		case of.Message() != nil && cf.Message().FullName() != of.Message().FullName():
			out = append(out, fmt.Sprintf("%s: message type changed to %s", where, cf.Message().FullName()))
		case of.Enum() != nil && cf.Enum().FullName() != of.Enum().FullName():
			out = append(out, fmt.Sprintf("%s: enum type changed to %s", where, cf.Enum().FullName()))
		case oneofName(of) != oneofName(cf):
			out = append(out, fmt.Sprintf("%s: moved into or out of a oneof", where))
		}
	}
	return out
}

func oneofName(f protoreflect.FieldDescriptor) protoreflect.Name {
	if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
		return o.Name()
	}
	return ""
}
