// Drives the real autumn-js client through the catalogue's writes: features and plans created, changed and
// deleted. The client parses every answer with its own models.
// Usage: node catalogue_writes.mjs <server URL> <secret key> <unused>
// Exits 0 and prints "catalogue writes passed" when every answer was read as Autumn's.
import assert from "node:assert/strict";
import { Autumn } from "autumn-js";

const [serverURL, secretKey] = process.argv.slice(2);
const autumn = new Autumn({ secretKey, serverURL, failOpen: false });

const words = await autumn.features.create({
  featureId: "words",
  name: "Words",
  type: "metered",
  consumable: true,
  eventNames: ["word_written"],
});
assert.deepEqual([words.id, words.consumable, words.eventNames], ["words", true, ["word_written"]]);
const credits = await autumn.features.create({
  featureId: "js_credits",
  name: "Credits",
  type: "credit_system",
  creditSchema: [{ meteredFeatureId: "words", creditCost: 0.5 }],
});
assert.deepEqual(credits.creditSchema, [{ meteredFeatureId: "words", creditCost: 0.5 }]);
const renamed = await autumn.features.update({ featureId: "words", name: "Written words" });
assert.equal(renamed.name, "Written words");

const writer = await autumn.plans.create({
  planId: "writer",
  name: "Writer",
  group: "writing",
  price: { amount: 12.5, interval: "month" },
  items: [
    {
      featureId: "words",
      included: 1000,
      reset: { interval: "month" },
      price: { amount: 0.02, interval: "month", billingUnits: 10, billingMethod: "usage_based", maxPurchase: 500 },
    },
  ],
});
assert.deepEqual([writer.id, writer.version, writer.group, writer.price.amount], ["writer", 1, "writing", 12.5]);
assert.equal(writer.items[0].price.maxPurchase, 500);

const updated = await autumn.plans.update({ planId: "writer", name: "Writer plus", autoEnable: false });
assert.deepEqual([updated.name, updated.version], ["Writer plus", 1]);

assert.equal((await autumn.plans.delete({ planId: "writer" })).success, true);
assert.equal((await autumn.features.delete({ featureId: "js_credits" })).success, true);
console.log("catalogue writes passed");
