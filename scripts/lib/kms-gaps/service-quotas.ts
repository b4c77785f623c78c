import type { ApiGap } from '../aws-proxy';

/**
 * Service Quotas' ListServiceQuotas for `kms`, which moto does not serve
 * (docs/kms-facts.md#moto): one quota per API of `quotas` (requests per second, e.g. the
 * limits the proxy enforces), named as Service Quotas names KMS's request quotas,
 * `<API> request rate` (docs/kms-facts.md#live-request-rates). Other services are forwarded.
 */
export const serviceQuotasGap = (quotas: Readonly<Record<string, number>>): ApiGap => ({
  answer({ api, body, region }) {
    if (api !== 'ListServiceQuotas') return undefined;
    const input = JSON.parse(body || '{}') as { ServiceCode?: string };
    if (input.ServiceCode !== 'kms') return undefined;
    return {
      body: {
        Quotas: Object.entries(quotas).map(([name, value], index) => ({
          ServiceCode: 'kms',
          ServiceName: 'AWS Key Management Service (AWS KMS)',
          QuotaArn: `arn:aws:servicequotas:${region ?? 'us-east-1'}:123456789012:kms/L-SIM${String(index).padStart(5, '0')}`,
          QuotaCode: `L-SIM${String(index).padStart(5, '0')}`,
          QuotaName: `${name} request rate`,
          Value: value,
          Unit: 'None',
          Adjustable: true,
          GlobalQuota: false,
        })),
      },
    };
  },
});
