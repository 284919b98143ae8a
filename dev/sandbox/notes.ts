import { type Handler, isReply, objectBody, tenantFor } from './context';
import type { Note } from './data';
import { isoSeconds } from './format';
import { type FieldErrors, ok, pageOf, parsePaging, queryInteger, validationReply } from './http';

/** The guide's limit on a note's text. */
export const MAX_NOTE_LENGTH = 1_048_576;

/** `GET /tenants/{tenantId}/notes?noteCategory&rfaId&orderByCreated&page&pageSize`. */
export const listNotes: Handler = (context) => {
  const tenant = tenantFor(context);
  if (isReply(tenant)) return tenant;
  const errors: FieldErrors = {};
  const category = queryInteger(context.query, 'noteCategory', 'NoteCategory', errors) ?? 1;
  const rfaId = queryInteger(context.query, 'rfaId', 'RfaId', errors) ?? null;
  const paging = parsePaging(context.query, errors);
  const order = context.query.get('orderByCreated')?.toLowerCase();
  if (order !== undefined && order !== 'ascending' && order !== 'descending') {
    errors.OrderByCreated = ["OrderByCreated must be 'Ascending' or 'Descending'."];
  }
  if (Object.keys(errors).length > 0) return validationReply(errors);
  const matches = tenant.notes
    .filter((entry) => entry.rfaId === rfaId && entry.note.noteCategory.id === category)
    .map((entry) => entry.note);
  if (order !== undefined) {
    const direction = order === 'ascending' ? 1 : -1;
    matches.sort((a, b) => direction * (Date.parse(a.created) - Date.parse(b.created)));
  }
  return ok({
    rfaId,
    ...pageOf(matches, paging),
    tenantId: tenant.tenantId,
    tenantName: tenant.tenantName,
  });
};

/** `POST /tenants/{tenantId}/notes` with `{text, noteCategoryId}`; an optional `rfaId` query files it under a referral. */
export const createNote: Handler = (context) => {
  const tenant = tenantFor(context);
  if (isReply(tenant)) return tenant;
  const body = objectBody(context);
  if (isReply(body)) return body;
  const text = body.string('text', 'Text', { maxLength: MAX_NOTE_LENGTH });
  body.required('noteCategoryId', 'NoteCategoryId', 'Note category');
  const categoryId = body.integer('noteCategoryId', 'NoteCategoryId');
  const category = context.data.reference.noteCategories.find((entry) => entry.id === categoryId);
  if (typeof categoryId === 'number' && !category) {
    body.fail('NoteCategoryId', `Note category ${categoryId} does not exist.`);
  }
  const rfaId = queryInteger(context.query, 'rfaId', 'RfaId', body.errors) ?? null;
  if (!body.valid || !category) return validationReply(body.errors);
  const note: Note = {
    text: text ?? null,
    author: context.caller.name ?? null,
    created: isoSeconds(Date.now()),
    noteCategory: { ...category },
  };
  tenant.notes.push({ rfaId, note });
  return ok(note);
};
