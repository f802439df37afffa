#!/usr/bin/env node
// An eventbatch stream consumer in Node.js: follows the log's Kafka topic in a
// consumer group, validates every event against the JSON Schema eventbatch
// publishes, and prints one line per job phase change.
//
// Where it sits: outside eventbatch, as another team's program would. It needs
// nothing from eventbatch but the topic and the published schema:
//
//   npm ci
//   node consumer.js --brokers 127.0.0.1:9092 --topic events
//
// Each Kafka record's value is one log record as JSON (docs/log.md), in
// record batches that may be compressed (gzip, or zstd with ?compression=zstd);
// the record's offset is its position in the log, and its key (when the writer
// set one) names the object. The schema (--schema, default the repository's
// docs/schema/events.schema.json, `eventbatch schema envelope`) is the record
// schema: the whole record is checked, its payload against its type's
// definition. The payload schemas alone (`eventbatch schema events`) do too:
// then the payload is checked. A record that fails is reported on stderr and
// counted, and reading goes on; a type the schema does not list (written by a
// newer eventbatch) is counted as unknown and skipped.
//
// Output, one line per JobPhaseChanged, in log order:
//   #<offset> <job> <previous> -> <phase>[ (<reason>)][ key=<record key>]
//
// Progress is the consumer group's committed offset (--group, default
// eventbatch-phase-changes; --session-timeout, default 10000 ms), committed
// after each fetched batch: a consumer started again in the same group goes
// on after the last batch it handled. With --to-end it stops once it has
// caught up (read up to the end the broker reported with its last fetch);
// otherwise it follows until SIGINT or SIGTERM. On the way out it prints a
// summary on stderr and exits 1 if any record was invalid.

'use strict';

const fs = require('fs');
const path = require('path');
const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require('kafkajs');
const fzstd = require('fzstd');

// Record batches compressed with zstd (a log opened with ?compression=zstd): kafkajs reads gzip by
// itself and takes other codecs as plugins. fzstd is a plain JavaScript decoder; this consumer
// only reads, so the codec only decompresses.
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress() { throw new Error('this consumer does not produce'); },
  async decompress(buffer) { return Buffer.from(fzstd.decompress(buffer)); },
});
const Ajv2020 = require('ajv/dist/2020').default;

const DEFAULT_SCHEMA = path.join(__dirname, '..', '..', '..', 'docs', 'schema', 'events.schema.json');
const USAGE = `usage: consumer.js --brokers HOST:PORT[,HOST:PORT] --topic TOPIC [--schema FILE]
                   [--group NAME] [--session-timeout MS] [--to-end]`;

function fail(message) {
  process.stderr.write(`consumer: error: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { group: 'eventbatch-phase-changes', toEnd: false, sessionTimeout: '10000', schema: DEFAULT_SCHEMA };
  const valued = {
    '--brokers': 'brokers', '--topic': 'topic', '--schema': 'schema', '--group': 'group',
    '--session-timeout': 'sessionTimeout',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--to-end') args.toEnd = true;
    else if (arg === '-h' || arg === '--help') { process.stdout.write(USAGE + '\n'); process.exit(0); }
    else if (valued[arg]) {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      args[valued[arg]] = argv[++i];
    } else fail(`unknown argument ${arg}\n${USAGE}`);
  }
  args.brokers = args.brokers || process.env.KAFKA_BROKERS;
  for (const name of ['brokers', 'topic']) {
    if (!args[name]) fail(`--${name} is required`);
  }
  args.sessionTimeout = Number(args.sessionTimeout);
  if (!Number.isInteger(args.sessionTimeout) || args.sessionTimeout < 1000) fail('--session-timeout is milliseconds, 1000 or more');
  return args;
}

function readJson(path, what) {
  let text;
  try { text = fs.readFileSync(path, 'utf8'); } catch (err) { fail(`cannot read the ${what} ${path}: ${err.message}`); }
  try { return JSON.parse(text); } catch (err) { fail(`the ${what} ${path} is not JSON: ${err.message}`); }
}

// The validators. The schema is either the published record schema (docs/schema/events.schema.json,
// `eventbatch schema envelope`: the whole record, its payload one of the event types) or the payload
// schemas alone (`eventbatch schema events`). The event types are those the document lists.
function validators(args) {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const doc = readJson(args.schema, 'schema');
  const defs = doc.$defs || {};
  const envelope = defs.Envelope;
  const listed = envelope ? envelope.properties.payload.oneOf : doc.anyOf;
  if (!Array.isArray(listed)) {
    fail(`${args.schema} is neither eventbatch's record schema nor its payload schemas`);
  }
  const types = new Set(listed.map((entry) => entry.$ref.split('/').pop()));
  ajv.addSchema(doc, 'eventbatch');
  const compiled = new Map();
  const payload = (type) => {
    if (!compiled.has(type)) compiled.set(type, ajv.getSchema(`eventbatch#/$defs/${type}`));
    return compiled.get(type);
  };
  return {
    source: envelope ? 'record schema' : 'payload schemas',
    knows: (type) => types.has(type),
    payload,
    record: envelope ? ajv.getSchema('eventbatch#/$defs/Envelope') : null,
  };
}

function describe(errors) {
  return (errors || []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const validate = validators(args);
  const kafka = new Kafka({
    clientId: 'eventbatch-phase-changes',
    brokers: args.brokers.split(','),
    logLevel: logLevel.ERROR,
  });
  const counts = { events: 0, valid: 0, invalid: 0, unknown: 0, phaseChanges: 0 };

  // With --to-end, a group already at the end the broker lists has nothing to read. (Some
  // Kafka-protocol brokers list the end as the last record batch's first offset + 1; the group
  // commits whole fetched batches, so it is never inside that batch.)
  if (args.toEnd) {
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(args.topic);
    const end = Math.max(...offsets.map((o) => Number(o.high)));
    const committed = await admin.fetchOffsets({ groupId: args.group, topics: [args.topic] });
    await admin.disconnect();
    const at = Math.max(0, ...committed[0].partitions.map((p) => Number(p.offset)));
    if (at >= end) return counts;
  }

  // A broker may hold the first JoinGroup for a while waiting for other members (Apache Kafka's
  // group.initial.rebalance.delay.ms; tansu waits half the session timeout): a shorter session
  // timeout joins sooner, a longer one tolerates longer pauses of this process.
  const consumer = kafka.consumer({
    groupId: args.group,
    allowAutoTopicCreation: false,
    sessionTimeout: args.sessionTimeout,
    rebalanceTimeout: Math.max(args.sessionTimeout, 5000),
    heartbeatInterval: Math.floor(args.sessionTimeout / 4),
  });
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const stop = () => finish();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  consumer.on(consumer.events.GROUP_JOIN, () => process.stderr.write(`joined group ${args.group}\n`));
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    process.stderr.write(`consumer crashed: ${payload.error.message}\n`);
    counts.crashed = true;
    finish();
  });

  await consumer.connect();
  await consumer.subscribe({ topic: args.topic, fromBeginning: true });
  // Each batch is handled, then its progress committed as the group's offset (the next record to
  // read), so a consumer stopped between batches resumes after the last event it printed.
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, resolveOffset }) => {
      let next = null;
      for (const message of batch.messages) {
        handle(message, validate, counts);
        resolveOffset(message.offset);
        next = Number(message.offset) + 1;
      }
      if (next === null) return;
      await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(next) }]);
      // Caught up: the fetch's high watermark is the end of the topic when the broker answered.
      if (args.toEnd && next >= Number(batch.highWatermark)) finish();
    },
  });
  await finished;
  await consumer.disconnect();
  return counts;
}

function handle(message, validate, counts) {
  counts.events += 1;
  const offset = message.offset;
  let record;
  try {
    record = JSON.parse(message.value.toString('utf8'));
  } catch (err) {
    counts.invalid += 1;
    process.stderr.write(`invalid #${offset}: not JSON: ${err.message}\n`);
    return;
  }
  if (typeof record !== 'object' || record === null || typeof record.type !== 'string') {
    counts.invalid += 1;
    process.stderr.write(`invalid #${offset}: not an event record (no type)\n`);
    return;
  }
  if (!validate.knows(record.type)) {
    counts.unknown += 1;
    process.stderr.write(`unknown event type ${record.type} at #${offset}: skipped\n`);
    return;
  }
  const check = validate.payload(record.type);
  const payloadOk = check(record.payload);
  if (!payloadOk || (validate.record && !validate.record(record))) {
    counts.invalid += 1;
    const why = payloadOk ? `record: ${describe(validate.record.errors)}` : `payload: ${describe(check.errors)}`;
    process.stderr.write(`invalid #${offset} ${record.type}: ${why}\n`);
    return;
  }
  counts.valid += 1;
  if (record.type !== 'JobPhaseChanged') return;
  counts.phaseChanges += 1;
  const p = record.payload;
  const reason = p.reason ? ` (${p.reason})` : '';
  const key = message.key ? ` key=${message.key.toString('utf8')}` : '';
  process.stdout.write(`#${offset} ${p.job} ${p.previous || '-'} -> ${p.phase}${reason}${key}\n`);
}

main().then(
  (counts) => {
    process.stderr.write(
      `${counts.events} events: ${counts.valid} valid, ${counts.invalid} invalid, ${counts.unknown} unknown; ` +
      `${counts.phaseChanges} phase changes\n`,
    );
    process.exit(counts.invalid || counts.crashed ? 1 : 0);
  },
  (err) => {
    process.stderr.write(`consumer: error: ${err.message}\n`);
    process.exit(2);
  },
);
