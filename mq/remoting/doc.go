// Package remoting implements RocketMQ's remoting protocol: the frame and
// header codecs, and connections, servers and clients that carry commands.
//
// # Frame
//
//	+--------+------------------+----------------------+-----------+
//	| offset | size             | field                | notes     |
//	+--------+------------------+----------------------+-----------+
//	| 0      | 4, big-endian    | N: bytes that follow | <= 16 MiB |
//	| 4      | 1                | serialization type   | 0 JSON, 1 ROCKETMQ binary |
//	| 5      | 3, big-endian    | H: header length     |           |
//	| 8      | H                | header               |           |
//	| 8+H    | N-4-H            | body                 | opaque    |
//	+--------+------------------+----------------------+-----------+
//
// The JSON header is an object with code, language, version, opaque, flag,
// remark and extFields (an object whose values are all strings). The Go
// client only ever sends JSON; the binary header is decoded and, when a
// request arrived in it, used for the response. Flag bit 0 marks a response,
// bit 1 a oneway request; a response carries its request's opaque.
//
// # Concurrency
//
// A Conn reads frames on one goroutine and serves every request on a
// goroutine of its own, so a long poll never delays the heartbeats, sends and
// lock calls that share the socket. Responses and requests are appended to
// one write buffer under a mutex and a single writer goroutine writes
// whatever has accumulated with one system call, so frames never interleave
// and bursts cost few writes. A malformed or oversized frame closes only its
// own connection.
package remoting
