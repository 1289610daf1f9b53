import type { FormatError } from '../../helper/format/index.js';
import { areaErrors, type ParsedArea } from '../../helper/areas/index.js';
import { specBytes } from '../../helper/format/index.js';

/** What `dump` found in a range of storage: areas, and sectors that are neither zero nor an area's start. */
export interface DumpReport {
  readonly path: string;
  readonly areas: readonly { readonly offset: number; readonly area: ParsedArea }[];
  readonly problems: readonly { readonly offset: number; readonly error: FormatError }[];
}

export function reportErrorCount(report: DumpReport): number {
  return report.problems.length + report.areas.reduce((sum, { area }) => sum + areaErrors(area).length, 0);
}

function errorJson(error: FormatError): { code: string; message: string } {
  return { code: error.code, message: error.message };
}

/** The one JSON document `dump --json` prints. Every record is listed, valid or not. */
export function dumpJson(report: DumpReport): unknown {
  return {
    path: report.path,
    areas: report.areas.map(({ offset, area }) => {
      const spec = area.spec;
      const common = {
        offset,
        kind: spec.kind,
        lockspace: spec.lockspaceName,
        ...(spec.kind === 'resource' ? { resource: spec.resourceName } : { ioTimeoutMs: spec.ioTimeoutMs }),
        hostsMax: spec.hostsMax,
        sectorSize: spec.sectorSize,
        bytes: specBytes(spec),
      };
      const hosts = area.hosts.map((record, index) => (record.ok ? { hostId: index + 1, ok: true, record: record.value } : { hostId: index + 1, ok: false, error: errorJson(record.error) }));
      if ('leader' in area) {
        const leader = area.leader.ok ? { ok: true, record: area.leader.value } : { ok: false, error: errorJson(area.leader.error) };
        return { ...common, leader, hosts };
      }
      return { ...common, hosts };
    }),
    problems: report.problems.map(({ offset, error }) => ({ offset, ...errorJson(error) })),
    errors: reportErrorCount(report),
  };
}
