/** Signs the benchmark's local user in and returns the Cookie header for the app host. */
export async function signIn(_publicUrl: string, _host: string, _user: string, _password: string): Promise<string> {
  throw new Error('pre-authentication is not wired into the benchmark yet');
}
