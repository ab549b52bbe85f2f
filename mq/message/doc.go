// Package message holds RocketMQ's message encodings: the stored record the
// CommitLog keeps and pull responses carry, the batch body producers send,
// the property string, message ids and tag hash codes.
//
// # Stored record (V1, IPv4 hosts)
//
//	| offset    | size | field                          |
//	|-----------|------|--------------------------------|
//	| 0         | 4    | TOTALSIZE (whole record)       |
//	| 4         | 4    | MAGICCODE 0xDAA320A7 (V1)      |
//	| 8         | 4    | BODYCRC (IEEE CRC-32 & 0x7FFFFFFF of the stored body) |
//	| 12        | 4    | QUEUEID                        |
//	| 16        | 4    | FLAG                           |
//	| 20        | 8    | QUEUEOFFSET (logical)          |
//	| 28        | 8    | PHYSICALOFFSET (in the CommitLog) |
//	| 36        | 4    | SYSFLAG                        |
//	| 40        | 8    | BORNTIMESTAMP (ms)             |
//	| 48        | 8    | BORNHOST (4 IPv4 bytes + int32 port; 16+4 with SYSFLAG 0x10) |
//	| 56        | 8    | STORETIMESTAMP (ms)            |
//	| 64        | 8    | STOREHOST (as BORNHOST; 16+4 with SYSFLAG 0x20) |
//	| 72        | 4    | RECONSUMETIMES                 |
//	| 76        | 8    | PREPARED TRANSACTION OFFSET    |
//	| 84        | 4+B  | BODYLENGTH, BODY               |
//	| 88+B      | 1+T  | TOPICLENGTH (1 byte; 2 in V2), TOPIC |
//	| 89+B+T    | 2+P  | PROPERTIESLENGTH, PROPERTIES   |
//
// TOTALSIZE = 91+B+T+P with IPv4 hosts; each IPv6 host adds 12. All integers
// are big-endian. The Go client decodes these fields strictly in order and
// never skips by TOTALSIZE, so records are always written V1 with topics of
// at most 127 bytes and properties shorter than 32768 bytes.
//
// # Batch body (SEND_BATCH_MESSAGE)
//
//	| size | field                        |
//	|------|------------------------------|
//	| 4    | TOTALSIZE of this item       |
//	| 4    | MAGICCODE (0)                |
//	| 4    | BODYCRC (0)                  |
//	| 4    | FLAG                         |
//	| 4+B  | BODYLENGTH, BODY             |
//	| 2+P  | PROPERTIESLENGTH, PROPERTIES |
//
// # Properties
//
// "key\x01value\x02" repeated. Keys and values are UTF-8 without \x01/\x02.
package message
