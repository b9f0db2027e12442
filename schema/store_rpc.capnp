# Wire messages of the storage server (storage/store_server.h,
# docs/store-format.md "Wire protocol"). A client (ZeroMQ DEALER) sends one
# frame holding a StoreRequest; the server (ROUTER) answers with one frame
# holding a StoreResponse carrying the same requestId. Records travel as the
# exact bytes stored in RocksDB (SampleRecord / DocumentRecord messages of
# store.capnp), so the server never re-encodes them and the client checks
# them with the same decoder as a local reader.
@0x8cad73530e199fc3;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("glm::schema::capnp");

# Version of this protocol; the server refuses requests with a newer one.
const storeProtocolVersion :UInt32 = 1;

# Names one sample: the key of family `samples`.
struct SampleKey {
  objective @0 :UInt8;            # glm::Objective value 0..2
  epoch @1 :UInt32;               # epoch
  index @2 :UInt64;               # index within (objective, epoch)
}

struct StoreRequest {
  protocolVersion @0 :UInt32;     # storeProtocolVersion of the sender
  requestId @1 :UInt64;           # chosen by the client; echoed in the response
  union {
    getSamples @2 :List(SampleKey);   # multi-get: every key must exist
    getSampleRange :group {           # samples (objective, epoch, [begin, end)), all must exist
      objective @3 :UInt8;        # glm::Objective value 0..2
      epoch @4 :UInt32;           # epoch
      begin @5 :UInt64;           # first index, inclusive
      end @6 :UInt64;             # one past the last index
    }
    putSamples @7 :List(Data);        # encoded SampleRecord messages, written as one atomic batch
    getDocuments @8 :List(UInt64);    # documents by id; every id must exist
    getInfo @9 :Void;                 # the store's info and document count
    stageDocuments :group {           # tokenizer output of one corpus shard, staged (meta
                                      # "kv/staging/docs/<shard>/<local>") until finalizeDocuments
      shard @10 :UInt32;              # corpus shard number (manifest order)
      firstLocal @11 :UInt64;         # local index of documents[0] within its shard
      documents @12 :List(Data);      # encoded DocumentRecord messages; their ids are ignored
    }
    finalizeDocuments @13 :Void;      # staged documents -> docs 0..N-1 in (shard, local) order and
                                      # the document index; idempotent (a marker records N)
    getDocumentLengths @14 :Void;     # the document index: tokens of each document
    getMeta @15 :Text;                # the value of a meta key (NOT_FOUND if absent)
    putMeta :group {                  # writes a meta key; only keys under "train/" (the
                                      # dataset manifest the pipeline's finalize task writes)
      key @16 :Text;
      value @17 :Data;
    }
  }
}

struct StoreResponse {
  protocolVersion @0 :UInt32;     # storeProtocolVersion of the server
  requestId @1 :UInt64;           # the request's id (0 when the request could not be read)
  union {
    error @2 :Error;              # the request failed; nothing was written
    records @3 :List(Data);       # getSamples / getSampleRange / getDocuments: encoded records in request order
    putDone @4 :UInt32;           # putSamples: number of samples written
    info @5 :InfoReply;           # getInfo
    count @6 :UInt64;             # stageDocuments: documents staged; finalizeDocuments: documents in the store
    lengths @7 :List(UInt64);     # getDocumentLengths: lengths[i] = tokens of document i
    meta @8 :Data;                # getMeta: the value; putMeta answers count = 1
  }
}

# A failed request: a glm::StatusCode and its message.
struct Error {
  code @0 :UInt32;                # glm::StatusCode value (e.g. 2 NOT_FOUND, 9 DATA_LOSS)
  message @1 :Text;               # what failed and what to do, naming the key
}

struct InfoReply {
  formatVersion @0 :UInt32;       # the store's format version
  tokenizerHash @1 :UInt64;       # the store's tokenizer hash
}
