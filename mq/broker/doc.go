package broker

// Locks.
//
// Most of the broker's mutexes guard one table and are leaves: while one
// is held, no other lock is taken and nothing is called out of package
// broker but file writes (a table persists under its lock):
//
//	meta.Table.mu                  each metadata table (topics, subscription
//	                               groups, consumer offsets, members'
//	                               addresses): entries, version, dirty flag
//	meta.Locks.mu                  queue locks of orderly consumers
//	clientTable.mu                 producers, consumers, requesters, their
//	                               connections
//	pullHolds.mu                   parked long polls
//	transactions.mu                resolved transactions, fallback conns
//	member.Member.mu               what the leader replicated last
//	putTimes.mu, sqlCache.mu       statistics, compiled SQL92 filters
//	Broker.kickMu                  connections with queued answers
//
// These are held across work, and are taken before any of those:
//
//	transactions.checking  one transaction check pass at a time; the pass
//	                       takes table locks and waits for puts
//	Broker.registerMu      one NameServer registration at a time, held
//	                       across the round trips → the topics'
//	                       meta.Table.mu
//	member.Member.offsetsMu  from taking offset changes out of the table
//	                       until their entry is proposed → the offsets'
//	                       meta.Table.mu, member.Member.mu, the replica's
//	                       put queue
//	meta.Table.flushMu     one Flush of a table at a time, held across
//	                       its file write → that table's mu
//
// Put callbacks and OnCompletions, which take Broker.kickMu, can run on
// the store's appender with its appendMu held, or on the replica's
// driver, so code holding kickMu must not call into the store or the
// replica.
