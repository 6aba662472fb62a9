import { DeleteLaunchTemplateCommand, paginateDescribeLaunchTemplates, type Filter } from '@aws-sdk/client-ec2';
import { errorCode } from '../errors.js';
import type { AwsClients } from './clients.js';

export interface TemplateInfo {
  id: string;
  name: string;
  createdAt?: Date;
  tags: Record<string, string>;
}

export async function describeTemplatesByTag(aws: AwsClients, key: string, values: string[]): Promise<TemplateInfo[]> {
  const Filters: Filter[] = [{ Name: `tag:${key}`, Values: values }];
  const out: TemplateInfo[] = [];
  for await (const page of paginateDescribeLaunchTemplates({ client: aws.ec2, pageSize: 200 }, { Filters })) {
    for (const t of page.LaunchTemplates ?? []) {
      out.push({
        id: t.LaunchTemplateId ?? '',
        name: t.LaunchTemplateName ?? '',
        createdAt: t.CreateTime,
        tags: Object.fromEntries((t.Tags ?? []).map((x) => [x.Key ?? '', x.Value ?? ''])),
      });
    }
  }
  return out;
}

/** true if deleted, false if it was already gone. */
export async function deleteTemplate(aws: AwsClients, id: string): Promise<boolean> {
  try {
    await aws.ec2.send(new DeleteLaunchTemplateCommand({ LaunchTemplateId: id }));
    return true;
  } catch (e) {
    if (/InvalidLaunchTemplate(Id|Name)\.(NotFound|Malformed)|NotFoundException/.test(errorCode(e))) return false;
    throw e;
  }
}
