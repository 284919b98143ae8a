// Alert rules on what the app exports to Application Insights (lib/telemetry: spans become `dependencies`,
// metrics `customMetrics`, the host's invocations `requests`), an action group mailing ALERT_EMAIL_TO, and the
// operators' workbook. docs/operations.md says what each alert means and what to do. test/infra.test.ts reads
// each rule's query and threshold from this file.
param applicationInsightsName string
param location string
param tags object = {}

@description('Comma-separated recipients; empty: the rules still fire (portal, Alerts) but mail nobody.')
param alertEmailTo string = ''

@description('Alert when the FPX client certificate has fewer days left than this.')
param certificateDaysThreshold int = 14

@description('Alert when FPX answers more 429s than this in 15 minutes (all instances together).')
param fpxThrottledThreshold int = 20

@description('Alert when more than this percentage of function invocations fail in 15 minutes.')
param failureRatePercent int = 10

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var recipients = filter(map(split(alertEmailTo, ','), (address) => trim(address)), (address) => !empty(address))

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(recipients)) {
  name: 'ag-${applicationInsightsName}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'fpx-crm'
    enabled: true
    emailReceivers: [
      for (address, i) in recipients: {
        name: 'email-${i}'
        emailAddress: address
        useCommonAlertSchema: true
      }
    ]
  }
}

var actions = empty(recipients) ? {} : { actionGroups: [actionGroup.id] }

// A stream (referrals, tenants, reference data; the per-tenant details fail into their poison queue, which
// `poison-queue` watches) whose last three runs all failed. Runs are the `sync <stream>` spans (lib/telemetry traceSyncRun).
var syncFailingQuery = '''
dependencies
| where name startswith "sync "
| extend stream = tostring(customDimensions["sync.stream"]), status = tostring(customDimensions["sync.status"]), perTenant = tostring(customDimensions["sync.per_tenant"])
| where isnotempty(stream) and perTenant != "true"
| partition hint.strategy=native by stream (top 3 by timestamp desc)
| summarize runs = count(), failed = countif(status == "failed") by stream
| where runs == 3 and failed == 3
'''

// Any message in a poison queue, as each instance read it at its last export (gauge queue.depth).
var poisonQuery = '''
customMetrics
| where name == "queue.depth" and tostring(customDimensions["queue.poison"]) == "true"
| extend queue = tostring(customDimensions["queue.name"])
| summarize depth = max(value) by queue
'''

// The FPX client certificate's days left (gauge certificate.days_left, reported while the app calls FPX).
var certificateQuery = '''
customMetrics
| where name == "certificate.days_left"
| summarize daysLeft = min(value)
'''

// FPX's 429 answers (counter fpx.throttled; each row one export interval's count).
var throttledQuery = '''
customMetrics
| where name == "fpx.throttled"
| summarize throttled = sum(valueSum)
'''

// Failed function invocations (the host's `requests`), as a percentage; quiet below 10 invocations.
var failureRateQuery = '''
requests
| summarize total = count(), failed = countif(success == false)
| where total >= 10
| extend failurePercent = 100.0 * failed / total
'''

var rules = [
  {
    name: 'sync-failing'
    description: 'A sync stream failed three runs in a row (docs/operations.md, "Alerts").'
    severity: 2
    frequency: 'PT15M'
    window: 'P1D'
    query: syncFailingQuery
    measure: ''
    aggregation: 'Count'
    operator: 'GreaterThan'
    threshold: 0
    dimensions: [{ name: 'stream', operator: 'Include', values: ['*'] }]
  }
  {
    name: 'poison-queue'
    description: 'A poison queue holds messages: deliveries, tenant syncs or CRM events gave up (docs/operations.md, "Alerts").'
    severity: 2
    frequency: 'PT5M'
    window: 'PT15M'
    query: poisonQuery
    measure: 'depth'
    aggregation: 'Maximum'
    operator: 'GreaterThan'
    threshold: 0
    dimensions: [{ name: 'queue', operator: 'Include', values: ['*'] }]
  }
  {
    name: 'certificate-expiring'
    description: 'The FPX client certificate expires soon: import its successor into Key Vault (docs/operations.md, "Alerts").'
    severity: 1
    frequency: 'PT1H'
    window: 'PT6H'
    query: certificateQuery
    measure: 'daysLeft'
    aggregation: 'Minimum'
    operator: 'LessThan'
    threshold: certificateDaysThreshold
    dimensions: []
  }
  {
    name: 'fpx-throttled'
    description: 'FPX answers many 429s: the rate budget is above what FastTrack allows (docs/operations.md, "Alerts").'
    severity: 3
    frequency: 'PT5M'
    window: 'PT15M'
    query: throttledQuery
    measure: 'throttled'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: fpxThrottledThreshold
    dimensions: []
  }
  {
    name: 'function-failures'
    description: 'Many function invocations fail (docs/operations.md, "Alerts").'
    severity: 2
    frequency: 'PT5M'
    window: 'PT15M'
    query: failureRateQuery
    measure: 'failurePercent'
    aggregation: 'Maximum'
    operator: 'GreaterThan'
    threshold: failureRatePercent
    dimensions: []
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in rules: {
    name: '${rule.name}-${applicationInsightsName}'
    location: location
    tags: tags
    properties: {
      displayName: 'FPX connector: ${rule.name}'
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [applicationInsights.id]
      evaluationFrequency: rule.frequency
      windowSize: rule.window
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: rule.aggregation
            metricMeasureColumn: empty(rule.measure) ? null : rule.measure
            operator: rule.operator
            threshold: rule.threshold
            dimensions: rule.dimensions
            failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
          }
        ]
      }
      autoMitigate: true
      actions: actions
    }
  }
]

// The charts an operator opens first: FPX calls and throttling, sync runs and rows, deliveries, queues,
// the certificate and failed invocations.
var charts = [
  {
    title: 'FPX calls by endpoint and status'
    query: 'customMetrics | where name == "fpx.calls" | extend endpoint = strcat(tostring(customDimensions["http.request.method"]), " ", tostring(customDimensions["fpx.endpoint"]), " ", tostring(customDimensions["http.response.status_code"])) | summarize calls = sum(valueSum) by endpoint, bin(timestamp, 15m)'
    visualization: 'timechart'
  }
  {
    title: 'FPX 429s and rate-limit wait (ms, average)'
    query: 'customMetrics | where name in ("fpx.throttled", "fpx.rate_wait") | summarize value = iff(name == "fpx.throttled", sum(valueSum), sum(valueSum) / sum(valueCount)) by name, bin(timestamp, 15m)'
    visualization: 'timechart'
  }
  {
    title: 'FPX calls: duration and failures (dependencies)'
    query: 'dependencies | where name startswith "FPX " | summarize calls = count(), failed = countif(success == false), p95ms = percentile(duration, 95) by name | order by calls desc'
    visualization: 'table'
  }
  {
    title: 'Sync runs by stream and status'
    query: 'customMetrics | where name == "sync.runs" and tostring(customDimensions["sync.per_tenant"]) != "true" | extend run = strcat(tostring(customDimensions["sync.stream"]), " ", tostring(customDimensions["sync.status"])) | summarize runs = sum(valueSum) by run, bin(timestamp, 1h)'
    visualization: 'timechart'
  }
  {
    title: 'Rows created, changed, removed per stream'
    query: 'customMetrics | where name == "sync.rows" | extend change = strcat(tostring(customDimensions["sync.stream"]), " ", tostring(customDimensions["sync.change"])) | summarize rows = sum(valueSum) by change, bin(timestamp, 1h)'
    visualization: 'timechart'
  }
  {
    title: 'CRM deliveries by final status'
    query: 'customMetrics | where name == "crm.deliveries" | extend outcome = strcat(tostring(customDimensions["crm.endpoint"]), " ", tostring(customDimensions["crm.delivery.status"])) | summarize deliveries = sum(valueSum) by outcome, bin(timestamp, 1h)'
    visualization: 'timechart'
  }
  {
    title: 'Queue depths (poison queues included)'
    query: 'customMetrics | where name == "queue.depth" | summarize depth = max(value) by queue = tostring(customDimensions["queue.name"]), bin(timestamp, 15m)'
    visualization: 'timechart'
  }
  {
    title: 'Certificate days left'
    query: 'customMetrics | where name == "certificate.days_left" | summarize daysLeft = min(value) by bin(timestamp, 6h)'
    visualization: 'timechart'
  }
  {
    title: 'Function invocations: failures'
    query: 'requests | summarize invocations = count(), failed = countif(success == false) by name | order by failed desc'
    visualization: 'table'
  }
]

// For-expressions may not sit inside a function call (string() below): the items are a variable.
var workbookItems = [
  for (chart, i) in charts: {
    type: 3
    name: 'chart-${i}'
    content: {
      version: 'KqlItem/1.0'
      title: chart.title
      query: chart.query
      queryType: 0
      resourceType: 'microsoft.insights/components'
      visualization: chart.visualization
      timeContext: { durationMs: 86400000 }
    }
  }
]

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(applicationInsights.id, 'fpx-connector-operations')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'FPX connector: operations'
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: string({
      version: 'Notebook/1.0'
      items: workbookItems
      fallbackResourceIds: [applicationInsights.id]
    })
  }
}

output actionGroupId string = empty(recipients) ? '' : actionGroup.id
output workbookId string = workbook.id
