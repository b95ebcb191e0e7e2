// Drives the real autumn-js client through the customer scenario of the seed documentation.
// Usage: node scenario.mjs <server URL> <secret key> <customer id>
// Exits 0 and prints "scenario passed" when every step answered as Autumn would.
import assert from "node:assert/strict";
import { Autumn } from "autumn-js";

const [serverURL, secretKey, customerId] = process.argv.slice(2);
const autumn = new Autumn({ secretKey, serverURL, failOpen: false });

const created = await autumn.customers.getOrCreate({ customerId, name: "Jo Example", email: "jo@example.com" });
assert.equal(created.id, customerId);
assert.equal(created.env, "sandbox");
assert.equal(created.balances.messages.granted, 100);
assert.equal(created.balances.messages.remaining, 100);
assert.equal(typeof created.createdAt, "number");

await autumn.customers.update({ customerId, name: "Mr New Name", email: "newemail@example.com" });

const fetched = await autumn.customers.get({ customerId });
assert.equal(fetched.name, "Mr New Name");
assert.equal(fetched.email, "newemail@example.com");

const tracked = await autumn.track({ customerId, featureId: "messages", value: 30 });
assert.equal(tracked.value, 30);
assert.equal(tracked.balance.remaining, 70);
assert.equal(tracked.balance.usage, 30);

const enough = await autumn.check({ customerId, featureId: "messages", requiredBalance: 70 });
assert.equal(enough.allowed, true);
const tooMuch = await autumn.check({ customerId, featureId: "messages", requiredBalance: 71 });
assert.equal(tooMuch.allowed, false);

const updated = await autumn.balances.update({ customerId, featureId: "messages", remaining: 500 });
assert.equal(updated.success, true);
const afterEdit = await autumn.check({ customerId, featureId: "messages" });
assert.equal(afterEdit.balance.remaining, 500);
assert.equal(afterEdit.balance.granted, 530);
assert.equal(afterEdit.balance.usage, 30);

const deleted = await autumn.customers.delete({ customerId });
assert.equal(deleted.success, true);

let status = null;
let body = "";
try {
  await autumn.customers.get({ customerId });
} catch (err) {
  status = err.statusCode;
  body = err.body;
}
assert.equal(status, 404, "a deleted customer answers 404");
assert.equal(JSON.parse(body).code, "customer_not_found");

console.log("scenario passed");
