import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { clientAddress } from "./client-address.js";
import { describeTrustProxy, trustFunction, type TrustProxy } from "../core/config/trust-proxy.js";

/** A request from `peer` carrying `forwarded` as its X-Forwarded-For. */
function request(peer: string, forwarded?: string): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers: forwarded === undefined ? {} : { "x-forwarded-for": forwarded }, connection: { remoteAddress: peer } } as unknown as IncomingMessage;
}

const from = (trust: TrustProxy | undefined, peer: string, forwarded?: string): string =>
  clientAddress(request(peer, forwarded), trust === undefined ? undefined : trustFunction(trust));

describe("clientAddress", () => {
  it("is the connection's address when nothing is trusted, whatever the header says", () => {
    assert.equal(from(undefined, "127.0.0.1", "203.0.113.9"), "127.0.0.1");
    assert.equal(from(false, "127.0.0.1", "203.0.113.9"), "127.0.0.1");
  });

  it("with a trusted proxy, is the nearest entry that is not a trusted proxy", () => {
    assert.equal(from(["127.0.0.1"], "127.0.0.1", "203.0.113.9"), "203.0.113.9");
    assert.equal(from(["127.0.0.1"], "127.0.0.1", "203.0.113.9, 10.0.0.7"), "10.0.0.7");
    assert.equal(from(["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "203.0.113.9, 10.0.0.7"), "203.0.113.9");
    assert.equal(from(["loopback"], "127.0.0.1", "198.51.100.4"), "198.51.100.4");
  });

  it("ignores X-Forwarded-For from a peer that is not trusted", () => {
    assert.equal(from(["10.0.0.5"], "127.0.0.1", "203.0.113.9"), "127.0.0.1");
  });

  it("a client cannot choose its address by writing its own X-Forwarded-For entries", () => {
    // The proxy appended the address it saw (203.0.113.9) after what the client sent.
    assert.equal(from(1, "127.0.0.1", "6.6.6.6, 203.0.113.9"), "203.0.113.9");
    assert.equal(from(["127.0.0.1"], "127.0.0.1", "6.6.6.6, 203.0.113.9"), "203.0.113.9");
  });

  it("counts hops: 2 trusts the peer and the proxy before it", () => {
    assert.equal(from(2, "127.0.0.1", "203.0.113.9, 10.0.0.7"), "203.0.113.9");
    assert.equal(from(true, "127.0.0.1", "203.0.113.9, 10.0.0.7"), "203.0.113.9");
  });

  it("without the header, is the connection's address", () => {
    assert.equal(from(1, "127.0.0.1"), "127.0.0.1");
  });
});

describe("trustFunction / describeTrustProxy", () => {
  it("refuses an entry that is not an address, a range or a known name", () => {
    assert.throws(() => trustFunction(["not-an-address"]), TypeError);
    assert.throws(() => trustFunction(["10.0.0.0/33"]), TypeError);
  });

  it("says what is trusted, and nothing when nothing is", () => {
    assert.equal(describeTrustProxy(false), undefined);
    assert.equal(describeTrustProxy(1), "X-Forwarded-For from the nearest 1 proxy hop");
    assert.equal(describeTrustProxy(["10.0.0.0/8", "loopback"]), "X-Forwarded-For from 10.0.0.0/8, loopback");
  });
});
