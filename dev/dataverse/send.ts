/**
 * `npm run dataverse -- <annotation|contact> [options]` posts one Dataverse webhook, in Dataverse's own JSON
 * shape and headers, to the local host's `POST /api/dataverse`, and prints the answer.
 *
 *   annotation  [--subject S] [--text T]                          a note on the account
 *   contact     [--first F] [--last L] [--email E] [--phone P] [--title T] [--country C] [--update]
 *   both        [--account <id>] [--id <row id>] [--request <guid>] [--oversized] [--key K] [--url <host>]
 *
 * With the running `npm start` (`.local/settings.json`): its host, its local Dataverse Web API (the row is put
 * there first, as it would be in Dataverse, so an Update or a trimmed context can be read back), its account
 * and its key (`.local/dataverse-key`). `--request` with an earlier event's id sends that event again (a replay).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../host/app-loader';
import { currentSettings } from '../host/settings';
import { runningStart } from '../local-settings';
import { answerOf, localHostUrl, printAnswer } from '../webhook';
import { dataverseHeaders, remoteExecutionContext, trimmed } from './context';

const USAGE =
  'usage: npm run dataverse -- <annotation|contact> [--account <id>] [--id <id>] [--request <guid>] [--oversized]\n' +
  '         annotation: [--subject S] [--text T]\n' +
  '         contact:    [--first F] [--last L] [--email E] [--phone P] [--title T] [--country C] [--update]\n' +
  '         [--key <x-fpx-dataverse-key>] [--url <host>]';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      account: { type: 'string' },
      id: { type: 'string' },
      request: { type: 'string' },
      oversized: { type: 'boolean', default: false },
      update: { type: 'boolean', default: false },
      subject: { type: 'string' },
      text: { type: 'string' },
      first: { type: 'string' },
      last: { type: 'string' },
      email: { type: 'string' },
      phone: { type: 'string' },
      title: { type: 'string' },
      country: { type: 'string' },
      key: { type: 'string' },
      url: { type: 'string' },
    },
  });
  const [kind] = positionals;
  if (kind !== 'annotation' && kind !== 'contact') {
    console.error(USAGE);
    return 2;
  }
  const local = runningStart()?.start.dataverse;
  const account = values.account ?? local?.account;
  if (!account) throw new Error('No account: pass --account <id> (npm start has a local one)');
  const key =
    values.key ?? currentSettings(PROJECT_ROOT).DATAVERSE_WEBHOOK_KEY?.trim() ?? localKey(local?.keyFile);
  const id = values.id ?? randomUUID();
  const parent = { LogicalName: 'account', Id: account };
  const defined = (row: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(row).filter(([, v]) => v !== undefined));

  const table = kind;
  const row =
    kind === 'annotation'
      ? defined({
          subject: values.subject ?? `Note from Dynamics 365 (${new Date().toISOString()})`,
          notetext: values.text,
          objecttypecode: 'account',
          objectid: parent,
        })
      : defined({
          firstname: values.first ?? (values.update ? undefined : 'Alex'),
          lastname: values.last ?? (values.update ? undefined : 'Morgan'),
          emailaddress1:
            values.email ?? (values.update ? undefined : `alex.${id.slice(0, 8)}@litware.example.com`),
          telephone1: values.phone,
          jobtitle: values.title,
          address1_country: values.country,
          parentcustomerid: values.update ? undefined : parent,
        });
  // The row as Dataverse would now hold it, in the local Web API (an Update's Target carries only the changes).
  if (local) await putRow(local.url, `${table}s`, id, row);

  const context = remoteExecutionContext({
    message: kind === 'contact' && values.update ? 'Update' : 'Create',
    table,
    id,
    attributes: row,
    requestId: values.request,
  });
  const body = JSON.stringify(values.oversized ? trimmed(context) : context);
  const url = `${(values.url ?? localHostUrl()).replace(/\/+$/, '')}/api/dataverse`;
  console.log(
    `${context.MessageName} of ${table} ${id}, request ${context.RequestId} (send again with --id and --request for a replay)`,
  );
  const response = await fetch(url, {
    method: 'POST',
    headers: dataverseHeaders(context, { key, oversized: values.oversized }),
    body,
  });
  return printAnswer(await answerOf(response));
}

function localKey(file: string | undefined): string | undefined {
  const resolved = file && path.resolve(PROJECT_ROOT, file);
  return resolved && existsSync(resolved) ? readFileSync(resolved, 'utf8').trim() : undefined;
}

/** Lookups go in as `{LogicalName, Id}`, which the local Web API serves as `_<name>_value`. */
async function putRow(
  webApi: string,
  table: string,
  id: string,
  row: Record<string, unknown>,
): Promise<void> {
  const response = await fetch(`${webApi}/_fake/${table}(${id})`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(row),
  });
  if (!response.ok) throw new Error(`the local Web API refused the row: HTTP ${response.status}`);
}

if (typeof require !== 'undefined' && require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`dataverse: ${error.message}`);
      process.exit(1);
    },
  );
}
