/** The deployment's one FPX budget, shared by every instance through Table Storage. See lanes.ts. */
export { busiestWindow, lanes, MAX_PAUSE_MS } from './lanes';
export { type SharedBudgetOptions, SharedRateBudget } from './shared-budget';
export { type BudgetStore, RATE_BUDGET_TABLE, TableBudgetStore } from './store';
