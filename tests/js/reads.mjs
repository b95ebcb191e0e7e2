// Drives the real autumn-js client through the reads an application shows its users: the catalogue
// (plans, features, rewards) and a usage chart. The client parses every answer with its own models.
// Usage: node reads.mjs <server URL> <secret key> <customer id>
// Exits 0 and prints "reads passed" when every answer was read as Autumn's.
import assert from "node:assert/strict";
import { Autumn } from "autumn-js";

const [serverURL, secretKey, customerId] = process.argv.slice(2);
const autumn = new Autumn({ secretKey, serverURL, failOpen: false });

const plans = await autumn.plans.list({});
assert.deepEqual(
  plans.list.map((p) => p.id),
  ["free", "pro", "scale", "seats_addon"],
);
const pro = await autumn.plans.get({ planId: "pro" });
assert.equal(pro.price.amount, 99);
assert.equal(pro.items.find((i) => i.featureId === "sso").reset, null);

const features = await autumn.features.list();
assert.deepEqual(
  features.list.map((f) => f.id),
  ["api_calls", "messages", "seats", "sso"],
);
const messages = await autumn.features.get({ featureId: "messages" });
assert.deepEqual(messages.eventNames, ["message_sent"]);

const rewards = await autumn.rewards.list({});
assert.deepEqual(
  rewards.coupons.map((c) => c.id),
  ["spring"],
);

await autumn.customers.getOrCreate({ customerId });
await autumn.track({ customerId, featureId: "messages", value: 4, properties: { model: "fast" } });
const eligible = await autumn.plans.list({ customerId });
assert.equal(eligible.list.find((p) => p.id === "scale").customerEligibility.attachAction, "upgrade");

const days = await autumn.events.aggregate({ customerId, featureId: "messages", range: "7d" });
assert.equal(days.list.length, 7);
assert.equal(days.list[6].values.messages, 4);
assert.deepEqual(days.total.messages, { count: 1, sum: 4 });
const grouped = await autumn.events.aggregate({
  customerId,
  featureId: ["messages"],
  range: "24h",
  binSize: "hour", // the client sends "day" unless told
  groupBy: "properties.model",
});
assert.equal(grouped.list.length, 24);
assert.deepEqual(grouped.list[23].groupedValues, { messages: { fast: 4 } });

console.log("reads passed");
