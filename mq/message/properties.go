package message

import (
	"sort"
	"strings"
)

// Well-known property keys.
const (
	PropTags              = "TAGS"
	PropKeys              = "KEYS"
	PropUniqKey           = "UNIQ_KEY"
	PropDelay             = "DELAY"
	PropWait              = "WAIT"
	PropTranMsg           = "TRAN_MSG"
	PropProducerGroup     = "PGROUP"
	PropTransactionID     = "__transactionId__"
	PropRealTopic         = "REAL_TOPIC"
	PropRealQueueID       = "REAL_QID"
	PropRetryTopic        = "RETRY_TOPIC"
	PropOriginMessageID   = "ORIGIN_MESSAGE_ID"
	PropCluster           = "CLUSTER"
	PropMsgRegion         = "MSG_REGION"
	PropTraceSwitch       = "TRACE_ON"
	PropCorrelationID     = "CORRELATION_ID"
	PropReplyToClient     = "REPLY_TO_CLIENT"
	PropMessageType       = "MSG_TYPE"
	PropReconsumeTime     = "RECONSUME_TIME"
	PropMaxReconsumeTimes = "MAX_RECONSUME_TIMES"
	PropCheckTimes        = "TRANSACTION_CHECK_TIMES"
	PropCheckImmunity     = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropTimerDeliverMS    = "TIMER_DELIVER_MS"
	PropTimerDelaySec     = "TIMER_DELAY_SEC"
	PropTimerDelayMS      = "TIMER_DELAY_MS"
	// PropDueMS is internal: the time (Unix ms) a message parked in a
	// schedule queue falls due. The store makes it the message's
	// ConsumeQueue tags code, so schedulers find due messages without
	// reading them.
	PropDueMS = "__DUE_MS"
	// PropTimerRef is internal: on a timer hop record, the physical offset
	// of the parked timer message it stands for.
	PropTimerRef = "__TIMER_REF"
)

const (
	nameSep  = '\x01'
	valueSep = '\x02'
)

// nextItem splits the first "key\x01value" item off the encoded
// properties s.
func nextItem[S ~string | ~[]byte](s S) (item, rest S) {
	if end := indexByte(s, valueSep); end >= 0 {
		return s[:end], s[end+1:]
	}
	return s, s[:0]
}

// splitItem splits an item into its key and value; ok is false when it has
// no name separator.
func splitItem[S ~string | ~[]byte](item S) (key, value S, ok bool) {
	sep := indexByte(item, nameSep)
	if sep < 0 {
		return item, item[:0], false
	}
	return item[:sep], item[sep+1:], true
}

// Property returns the value of key in the encoded properties s (a string
// or the raw bytes of a record).
func Property[S ~string | ~[]byte](s S, key string) (S, bool) {
	for len(s) > 0 {
		var item S
		item, s = nextItem(s)
		if k, v, ok := splitItem(item); ok && string(k) == key {
			return v, true
		}
	}
	var zero S
	return zero, false
}

func indexByte[S ~string | ~[]byte](s S, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// ParseProperties decodes s into a map. Items without a name separator or
// with an empty key are skipped.
func ParseProperties(s string) map[string]string {
	m := make(map[string]string)
	for len(s) > 0 {
		var item string
		item, s = nextItem(s)
		if k, v, ok := splitItem(item); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// EncodeProperties encodes m with keys in sorted order.
func EncodeProperties(m map[string]string) string {
	keys := make([]string, 0, len(m))
	n := 0
	for k, v := range m {
		keys = append(keys, k)
		n += len(k) + len(v) + 2
	}
	sort.Strings(keys)
	var b strings.Builder
	b.Grow(n)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(nameSep)
		b.WriteString(m[k])
		b.WriteByte(valueSep)
	}
	return b.String()
}

// SetProperty returns s with key set to value, replacing an existing value.
func SetProperty(s, key, value string) string {
	return DeleteProperty(s, key) + key + string(nameSep) + value + string(valueSep)
}

// DeleteProperty returns s without key.
func DeleteProperty(s, key string) string {
	if _, ok := Property(s, key); !ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		var item string
		item, s = nextItem(s)
		if k, _, ok := splitItem(item); item == "" || ok && k == key {
			continue
		}
		b.WriteString(item)
		b.WriteByte(valueSep)
	}
	return b.String()
}

// Keys splits a KEYS property value into its space-separated keys.
func Keys(v string) []string { return strings.Fields(v) }

// Known holds the properties the broker and the store act on, found in one
// pass over the encoded properties.
type Known[S ~string | ~[]byte] struct {
	Tags, Keys, UniqKey, Delay, TranMsg, Cluster, Due S
	HasUniqKey, HasCluster                            bool
}

// ScanKnown extracts the well-known properties of s in one pass.
func ScanKnown[S ~string | ~[]byte](s S) Known[S] {
	var k Known[S]
	for len(s) > 0 {
		var item S
		item, s = nextItem(s)
		key, v, ok := splitItem(item)
		if !ok {
			continue
		}
		switch string(key) {
		case PropTags:
			k.Tags = v
		case PropKeys:
			k.Keys = v
		case PropUniqKey:
			k.UniqKey, k.HasUniqKey = v, true
		case PropDelay:
			k.Delay = v
		case PropTranMsg:
			k.TranMsg = v
		case PropCluster:
			k.Cluster, k.HasCluster = v, true
		case PropDueMS:
			k.Due = v
		}
	}
	return k
}
