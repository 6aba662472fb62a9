// A Price List product as GetProducts returns it (moto has none): for the in-memory world and the lab proxy.
/** One Price List product as GetProducts returns it: a JSON string with the product and its OnDemand terms. */
export function priceListItem(type: string, region: string, usdPerHour: number, skuPrefix = 'FAKE'): string {
  const sku = `${skuPrefix}${type.replace(/\W/g, '').toUpperCase()}`;
  return JSON.stringify({
    product: {
      productFamily: 'Compute Instance',
      sku,
      attributes: {
        instanceType: type,
        regionCode: region,
        operatingSystem: 'Linux',
        tenancy: 'Shared',
        preInstalledSw: 'NA',
        capacitystatus: 'Used',
      },
    },
    serviceCode: 'AmazonEC2',
    terms: {
      OnDemand: {
        [`${sku}.JRTCKXETXF`]: {
          offerTermCode: 'JRTCKXETXF',
          sku,
          priceDimensions: {
            [`${sku}.JRTCKXETXF.6YS6EN2CT7`]: {
              unit: 'Hrs',
              pricePerUnit: { USD: usdPerHour.toFixed(10) },
              description: `$${usdPerHour} per On Demand Linux ${type} Instance Hour`,
            },
          },
        },
      },
    },
    version: 'fake',
    publicationDate: '2026-11-01T00:00:00Z',
  });
}
