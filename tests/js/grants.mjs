// Drives the real autumn-js client through grants outside the plan: balances.create with an expiry,
// the grant in the customer's balances (read through the client's models), and balances.delete.
// autumn-js 1.3.13 has no balances.list: it is called over plain HTTP, and its rows read here.
// Usage: node grants.mjs <server URL> <secret key> <customer id>
// Exits 0 and prints "grants passed" when every answer was read as Autumn's.
import assert from "node:assert/strict";
import { Autumn } from "autumn-js";

const [serverURL, secretKey, customerId] = process.argv.slice(2);
const autumn = new Autumn({ secretKey, serverURL, failOpen: false });
const expiresAt = Date.now() + 3 * 86_400_000;

await autumn.customers.getOrCreate({ customerId });
const created = await autumn.balances.create({
  customerId,
  featureId: "messages",
  includedGrant: 40,
  expiresAt,
  balanceId: "js_promo",
});
assert.equal(created.success, true);
await autumn.track({ customerId, featureId: "messages", value: 50 });

const customer = await autumn.customers.getOrCreate({ customerId });
const messages = customer.balances.messages;
assert.deepEqual([messages.granted, messages.remaining], [140, 90]);
const promo = messages.breakdown.find((b) => b.id === "js_promo");
assert.deepEqual([promo.planId, promo.remaining, promo.expiresAt], [null, 0, expiresAt]);

const listed = await fetch(`${serverURL}/v1/balances.list`, {
  method: "POST",
  headers: { Authorization: `Bearer ${secretKey}`, "Content-Type": "application/json" },
  body: JSON.stringify({ customer_id: customerId, plan_id: null }),
}).then((r) => r.json());
assert.deepEqual(
  listed.list.map((b) => [b.id, b.status, b.usage]),
  [["js_promo", "active", 40]],
);

const deleted = await autumn.balances.delete({ customerId, balanceId: "js_promo" });
assert.equal(deleted.success, true);
const check = await autumn.check({ customerId, featureId: "messages" });
assert.deepEqual([check.balance.granted, check.balance.remaining], [100, 90]);

console.log("grants passed");
