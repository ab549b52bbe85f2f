package protocol

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Consume types, message models and start positions as clients send them.
const (
	ConsumeActively  = "CONSUME_ACTIVELY"
	ConsumePassively = "CONSUME_PASSIVELY"
	Clustering       = "CLUSTERING"
	Broadcasting     = "BROADCASTING"
	FromLastOffset   = "CONSUME_FROM_LAST_OFFSET"
	FromFirstOffset  = "CONSUME_FROM_FIRST_OFFSET"
	FromTimestamp    = "CONSUME_FROM_TIMESTAMP"
	ExpressionTag    = "TAG"
	ExpressionSQL92  = "SQL92"
	SubscribeAll     = "*"
)

// HeartbeatData is the body of HEART_BEAT.
type HeartbeatData struct {
	ClientID        string         `json:"clientID"`
	ProducerDataSet []ProducerData `json:"producerDataSet"`
	ConsumerDataSet []ConsumerData `json:"consumerDataSet"`
}

// ProducerData names a producer group of a client.
type ProducerData struct {
	GroupName string `json:"groupName"`
}

// ConsumerData describes a consumer group of a client.
type ConsumerData struct {
	GroupName           string             `json:"groupName"`
	ConsumeType         string             `json:"consumeType"`
	MessageModel        string             `json:"messageModel"`
	ConsumeFromWhere    string             `json:"consumeFromWhere"`
	SubscriptionDataSet []SubscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

// SubscriptionData is a consumer's subscription to one topic.
type SubscriptionData struct {
	ClassFilterMode bool      `json:"classFilterMode"`
	Topic           string    `json:"topic"`
	SubString       string    `json:"subString"`
	TagsSet         []string  `json:"tagsSet"`
	CodeSet         []FlexInt `json:"codeSet"`
	SubVersion      int64     `json:"subVersion"`
	ExpressionType  string    `json:"expressionType"`
}

// FlexInt is an integer that decodes from a JSON number or a string holding
// one: the Go client sends tag codes as strings, Java as numbers.
type FlexInt int64

// UnmarshalJSON accepts 12 and "12".
func (f *FlexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("protocol: tag code %s: %w", b, err)
	}
	*f = FlexInt(n)
	return nil
}

// ParseTags splits a TAG expression ("a || b") into its tags; "*" or ""
// give nil (match all).
func ParseTags(expr string) []string {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == SubscribeAll {
		return nil
	}
	var tags []string
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

// ConsumerListBody is the body of a GET_CONSUMER_LIST_BY_GROUP response.
type ConsumerListBody struct {
	ConsumerIDList []string `json:"consumerIdList"`
}

// MessageQueue names one queue.
type MessageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
}

// LockBatchRequest is the body of LOCK_BATCH_MQ and UNLOCK_BATCH_MQ.
type LockBatchRequest struct {
	ConsumerGroup  string         `json:"consumerGroup"`
	ClientID       string         `json:"clientId"`
	MQSet          []MessageQueue `json:"mqSet"`
	OnlyThisBroker bool           `json:"onlyThisBroker"`
}

// LockBatchResponse is the body of a LOCK_BATCH_MQ response.
type LockBatchResponse struct {
	LockOKMQSet []MessageQueue `json:"lockOKMQSet"`
}

// Decode unmarshals a JSON body, naming what failed.
func Decode(body []byte, what string, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("protocol: %s body: %w", what, err)
	}
	return nil
}

// Encode marshals a body; the types here always marshal.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("protocol: encode %T: %v", v, err))
	}
	return b
}
