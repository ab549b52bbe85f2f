// Package protocol holds the JSON bodies of RocketMQ's remoting protocol as
// the official clients and our daemons exchange them: routes, broker
// registration, heartbeats, consumer bookkeeping and admin replies.
//
// Encoding follows what the Go client v2.1.2 parses: compact standard JSON,
// map keys quoted, every list present (never null) where the client
// requires it.
package protocol

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// Permission bits of a topic.
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	PermInherit  = 1
)

// PermString renders perm bits as Java's PermName.perm2String does.
func PermString(p int) string {
	b := []byte("---")
	if p&PermRead != 0 {
		b[0] = 'R'
	}
	if p&PermWrite != 0 {
		b[1] = 'W'
	}
	if p&PermInherit != 0 {
		b[2] = 'X'
	}
	return string(b)
}

// QueueData is one broker's share of a topic in a route.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSysFlag   int    `json:"topicSysFlag"`
}

// BrokerData is one broker group: brokerId → address (0 is the master).
type BrokerData struct {
	Cluster            string           `json:"cluster"`
	BrokerName         string           `json:"brokerName"`
	BrokerAddrs        map[int64]string `json:"brokerAddrs"`
	EnableActingMaster bool             `json:"enableActingMaster"`
}

// MasterAddr returns the brokerId 0 address, or "".
func (b BrokerData) MasterAddr() string { return b.BrokerAddrs[0] }

// TopicRouteData is the body of a GET_ROUTEINFO_BY_TOPIC response.
type TopicRouteData struct {
	OrderTopicConf    string              `json:"orderTopicConf,omitempty"`
	QueueDatas        []QueueData         `json:"queueDatas"`
	BrokerDatas       []BrokerData        `json:"brokerDatas"`
	FilterServerTable map[string][]string `json:"filterServerTable"`
}

// ClusterInfo is the body of a GET_BROKER_CLUSTER_INFO response.
type ClusterInfo struct {
	BrokerAddrTable  map[string]BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
}

// TopicList is the body of topic list responses.
type TopicList struct {
	TopicList  []string `json:"topicList"`
	BrokerAddr string   `json:"brokerAddr,omitempty"`
}

// DataVersion versions a broker's topic table.
type DataVersion struct {
	StateVersion int64 `json:"stateVersion"`
	Timestamp    int64 `json:"timestamp"`
	Counter      int64 `json:"counter"`
}

// TopicConfig is a topic's configuration on a broker.
type TopicConfig struct {
	TopicName       string            `json:"topicName"`
	ReadQueueNums   int               `json:"readQueueNums"`
	WriteQueueNums  int               `json:"writeQueueNums"`
	Perm            int               `json:"perm"`
	TopicFilterType string            `json:"topicFilterType"`
	TopicSysFlag    int               `json:"topicSysFlag"`
	Order           bool              `json:"order"`
	Attributes      map[string]string `json:"attributes"`
}

// TopicConfigWrapper is the topic table a broker registers.
type TopicConfigWrapper struct {
	TopicConfigTable map[string]TopicConfig `json:"topicConfigTable"`
	DataVersion      DataVersion            `json:"dataVersion"`
}

// RegisterBrokerBody is the body of REGISTER_BROKER.
type RegisterBrokerBody struct {
	TopicConfigSerializeWrapper TopicConfigWrapper `json:"topicConfigSerializeWrapper"`
	FilterServerList            []string           `json:"filterServerList"`
}

// DecodeRegisterBody decodes a REGISTER_BROKER body, plain JSON or Java's
// compressed form (a deflate stream of length-prefixed JSON pieces).
func DecodeRegisterBody(body []byte, compressed bool) (RegisterBrokerBody, error) {
	var out RegisterBrokerBody
	if !compressed {
		if err := json.Unmarshal(body, &out); err != nil {
			return out, fmt.Errorf("protocol: register body: %w", err)
		}
		return out, nil
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(body)), 64<<20))
	if err != nil {
		return out, fmt.Errorf("protocol: inflate register body: %w", err)
	}
	r := pieceReader{b: raw}
	if err := json.Unmarshal(r.piece(), &out.TopicConfigSerializeWrapper.DataVersion); err != nil || r.err != nil {
		return out, fmt.Errorf("protocol: compressed register body: data version: %v %v", err, r.err)
	}
	n := r.int()
	out.TopicConfigSerializeWrapper.TopicConfigTable = make(map[string]TopicConfig, max(n, 0))
	for range n {
		var tc TopicConfig
		if err := json.Unmarshal(r.piece(), &tc); err != nil || r.err != nil {
			return out, fmt.Errorf("protocol: compressed register body: topic config: %v %v", err, r.err)
		}
		out.TopicConfigSerializeWrapper.TopicConfigTable[tc.TopicName] = tc
	}
	if p := r.piece(); r.err == nil && len(p) > 0 {
		_ = json.Unmarshal(p, &out.FilterServerList)
	}
	return out, nil
}

type pieceReader struct {
	b   []byte
	err error
}

func (r *pieceReader) int() int {
	if r.err != nil || len(r.b) < 4 {
		r.err = fmt.Errorf("truncated")
		return 0
	}
	n := int(int32(binary.BigEndian.Uint32(r.b)))
	r.b = r.b[4:]
	return n
}

func (r *pieceReader) piece() []byte {
	n := r.int()
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("truncated")
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}
