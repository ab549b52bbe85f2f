package broker

import (
	"fmt"

	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
)

// tagFilter matches messages by tag. The ConsumeQueue's tags code is only a
// first cut: codes are computed here from the subscription's tag strings
// with the same Java hash the store uses, and a candidate is confirmed by
// comparing its TAGS property as a string, so hash collisions and the Go
// client's different hashing of non-ASCII tags never skip or pass a message
// wrongly.
type tagFilter struct {
	tags  map[string]bool
	codes map[int64]bool
}

// newTagFilter builds a filter from a TAG expression; nil means "all".
func newTagFilter(expr string) *tagFilter {
	tags := protocol.ParseTags(expr)
	if len(tags) == 0 {
		return nil
	}
	f := &tagFilter{tags: make(map[string]bool, len(tags)), codes: make(map[int64]bool, len(tags))}
	for _, t := range tags {
		f.tags[t] = true
		f.codes[message.TagsCode(t)] = true
	}
	return f
}

func (f *tagFilter) MatchTagsCode(code int64) bool { return f.codes[code] }
func (f *tagFilter) NeedsMessage() bool            { return true }
func (f *tagFilter) MatchMessage(props string) bool {
	tag, _ := message.Property(props, message.PropTags)
	return f.tags[tag]
}

// subscriptionFilter resolves the filter of a pull: the request's own
// subscription when it carries one, otherwise the group's heartbeat
// subscription, otherwise everything (the client filters tags itself, and
// refusing would stall a consumer that pulls before its first heartbeat
// lands).
func (b *Broker) subscriptionFilter(group, topic string, sysFlag int32, expr, exprType string) (*tagFilter, error) {
	if sysFlag&pullHasSubscription == 0 {
		sub, ok := b.clients.subscription(group, topic)
		if !ok {
			return nil, nil
		}
		expr, exprType = sub.SubString, sub.ExpressionType
	}
	switch exprType {
	case "", protocol.ExpressionTag:
		return newTagFilter(expr), nil
	case protocol.ExpressionSQL92:
		return nil, fmt.Errorf("the broker does not support consumer to filter message by SQL92 (enablePropertyFilter is off)")
	}
	return nil, fmt.Errorf("unknown expression type %q", exprType)
}
