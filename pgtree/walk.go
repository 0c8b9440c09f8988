// Package pgtree holds helpers over pg_query's parse trees that both the
// schema loader and the planner use.
package pgtree

import "google.golang.org/protobuf/reflect/protoreflect"

// Walk calls fn on m and on every message below it, depth first. pg_query's
// parse tree is made of protobuf messages, so one reflective walk reaches
// every node kind without a hand-written visitor per type.
func Walk(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				Walk(list.Get(i).Message(), fn)
			}
			return true
		}
		Walk(v.Message(), fn)
		return true
	})
}
